"""The multi-thread cost (`tir_armq.measure.threads`) on a parallel loop whose split is known: N equal
rows on T threads of TVM's pool cost ceil(N/T)/N of one thread's work, plus the launch's overhead;
the same run twice gives the same numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tvm
from tvm.script import tirx as T

from tir_armq.board.guest import BOARD_CORES
from tir_armq.measure.cost import export_aarch64, measure_kernel
from tir_armq.measure.mca import CORTEX_A72
from tir_armq.measure.threads import measure_threaded
from tir_armq.targets import AARCH64_A72

ROWS, COLS = 12, 2048
# A launch's fork and join as the estimate sees them (the pool's code on the launching thread,
# the tasks' calls): measured 1.5-3.5 k cycles for 2-4 threads; the bound keeps it from hiding work.
MAX_OVERHEAD = 6000


@T.prim_func(s_tir=True)
def rows_plus_one(a: T.Buffer((ROWS, COLS), "int32"), b: T.Buffer((ROWS, COLS), "int32")):
    T.func_attr({"global_symbol": "rows_plus_one", "tirx.noalias": True})
    for i in T.parallel(ROWS):
        for j in range(COLS):
            with T.sblock("b"):
                vi, vj = T.axis.remap("SS", [i, j])
                b[vi, vj] = a[vi, vj] + 1


@pytest.fixture(scope="module")
def parallel_rows(tmp_path_factory):
    guest = pytest.importorskip("tir_armq.board.guest").Guest.default()
    if not guest.sysroot.exists():
        pytest.skip("emulated board not set up: run scripts/setup.sh")
    executable = tvm.compile(tvm.IRModule({"rows_plus_one": rows_plus_one}), target=AARCH64_A72.tvm_target())
    library = export_aarch64(executable, tmp_path_factory.mktemp("threads"))
    a = np.arange(ROWS * COLS, dtype=np.int32).reshape(ROWS, COLS)
    return library, [a, np.zeros_like(a)]


_COSTS: dict[int, object] = {}


def _cost(parallel_rows, threads, fresh=False):
    """A guest run costs ~15 s: each thread count is measured once per session unless `fresh`."""
    library, args = parallel_rows
    if fresh or threads not in _COSTS:
        _COSTS[threads] = measure_threaded(library, "rows_plus_one", args, threads=threads, model=CORTEX_A72,
                                           calls=2)
    return _COSTS[threads]


def test_one_thread_is_the_single_thread_cost(parallel_rows, tmp_path):
    """On one thread the multi-thread method gives the single-thread method's cost of the same counted
    run (one segment: the launching thread's runtime code plus its work)."""
    from tir_armq.board.guest import GUEST_PYTHON, Guest
    from tir_armq.measure.cost import KERNEL_GUEST, cost_of_regions
    from tir_armq.measure.plugin import run_counted
    from tir_armq.measure.threads import threaded_cost

    library, args = parallel_rows
    guest = Guest.default()
    np.savez(tmp_path / "args.npz", *args)
    argv = [str(guest.sysroot / GUEST_PYTHON), "-P", str(KERNEL_GUEST), str(library), "rows_plus_one",
            str(tmp_path / "args.npz"), "--calls", "2", "--maps", str(tmp_path / "maps"), "--threads", "1"]
    counts = run_counted(argv, sysroot=guest.sysroot, env=guest.env(), cwd=tmp_path, code_bytes=True,
                         per_thread=True)
    single = cost_of_regions(counts, CORTEX_A72)
    one = threaded_cost([counts], (tmp_path / "maps").read_text(), guest.sysroot, str(library), CORTEX_A72,
                        threads=1, calls=2)
    assert one.launches == 0
    # The pool's wait-loop check (ldar + cbnz) runs once per launch even when nothing waits, and is
    # left out as waiting code: 2 instructions a call.
    assert 0 <= single.instructions - one.instructions <= 2
    assert one.cycles == pytest.approx(single.cycles, rel=1e-3)
    # And across guests: the kernel-measuring guest (`measure_kernel`) runs the same call path but for
    # the Python frames around it, which move with the command line and paths by tens of instructions.
    assert _cost(parallel_rows, 1).cycles == pytest.approx(measure_kernel(library, "rows_plus_one", args,
                                                                          calls=2).cycles, rel=5e-3)


@pytest.mark.parametrize("threads", [pytest.param(2, marks=pytest.mark.slow), 3, BOARD_CORES])
def test_equal_rows_split_over_threads(parallel_rows, threads):
    one = _cost(parallel_rows, 1)
    cost = _cost(parallel_rows, threads)
    share = math.ceil(ROWS / threads) / ROWS
    overhead = cost.cycles - share * one.cycles
    assert cost.launches == 1 and cost.threads == threads
    assert 0 < overhead < MAX_OVERHEAD, (threads, cost.cycles, share * one.cycles)
    # The work is the same whichever thread does it: total instructions stay within the overhead.
    assert abs(cost.instructions - one.instructions) < MAX_OVERHEAD


def test_two_runs_same_numbers(parallel_rows):
    a, b = _cost(parallel_rows, BOARD_CORES), _cost(parallel_rows, BOARD_CORES, fresh=True)
    assert (a.cycles, a.instructions) == (b.cycles, b.instructions)


def _one_case_per_variant():
    from cases import table_cases

    chosen = {}
    for name, case in table_cases():
        if case.spec.requantizes and case.kernel.name in PARALLEL_VARIANTS:
            chosen.setdefault(case.kernel.name, (name, case))
    return sorted(chosen.values())


PARALLEL_VARIANTS = ("conv_c2", "conv_c8", "conv_c8_im2col", "dwconv_int8_mla8")
PER_VARIANT = _one_case_per_variant()


@pytest.mark.board
@pytest.mark.parametrize("case", [c for _, c in PER_VARIANT], ids=[i for i, _ in PER_VARIANT])
def test_parallel_kernels_are_bit_exact_on_four_threads(case, board_key):
    """The variants' fixed schedules built for 4 threads launch a parallel loop and compute the layer
    exactly on 4 threads of the board's pool."""
    from runners import run_board

    from tir_armq.build import assembly

    asm = assembly(case.kernel.build(case.spec), AARCH64_A72.with_threads(BOARD_CORES))
    assert "__TVMBackendParallelLaunch" in asm
    np.testing.assert_array_equal(run_board(case, board_key, threads=BOARD_CORES), case.expected())


@pytest.mark.slow  # 3-13 min on 2 cores: a guest process per candidate
@pytest.mark.board
def test_tuning_for_four_threads_keeps_its_records_apart(tmp_path):
    """`tune --threads 4`: candidates ranked by their 4-thread latency, records in the 4-thread folder
    only, and a 4-thread build takes them (its kernel launching the pool)."""
    from cases import DEPTHWISE_TABLE

    from tir_armq.database import TargetDatabase
    from tir_armq.kernels import DWCONV_INT8_MLA8
    from tir_armq.tuning import Task, tune
    from tir_armq.workloads import depthwise_spec

    spec = depthwise_spec(**dict(DEPTHWISE_TABLE["mnv2_3x3_s1"], output_dtype="int8"))
    func = DWCONV_INT8_MLA8.build(spec)
    four = AARCH64_A72.with_threads(BOARD_CORES)
    tune([Task(DWCONV_INT8_MLA8.kernel_name(spec), func)], four, tmp_path, trials=1)
    assert not (tmp_path / AARCH64_A72.db_name).exists()
    best = TargetDatabase(tmp_path, four).best_schedule(func)
    assert best is not None
    lowered = tvm.compile(best.mod, target=four.tvm_target()).mod.inspect_source("s")
    assert "__TVMBackendParallelLaunch" in lowered
