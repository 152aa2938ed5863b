"""MetaSchedule builder and runner for the emulated board that rank candidates by estimated
cycles (counting plugin + llvm-mca), not by emulated wall time, which means nothing.

`tune_tir(..., builder=board_builder(), runner=CycleEstimateRunner())` tunes for a Cortex-A72
without one; `board_builder("armv7")` with `Armv7CycleEstimateRunner(symbol)` for a Cortex-A7 (the
kernel runs under qemu-arm in the C harness: there is no armv7 TVM runtime). On a real board,
MetaSchedule's own RPCRunner (timings) remains the way.
"""

from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import LocalBuilder
from tvm.s_tir.meta_schedule.runner import PyRunner, PyRunnerFuture, RunnerFuture, RunnerInput, RunnerResult

from .cost import NOMINAL_HZ, CountingGuest
from .mca import CORTEX_A72, CpuModel

ENTRY = "@entry"


def register_intrinsics() -> None:
    """Builder workers are fresh processes: our tensor intrinsics must be registered there too."""
    from tir_armq import intrinsics

    for isa in ("aarch64", "armv7", "generic"):
        intrinsics.for_isa(isa)


def _export(mod, cross_cc: str) -> str:
    from tvm.support import cc

    path = os.path.join(tempfile.mkdtemp(prefix="tir_armq_ms_"), "candidate.so")
    mod.export_library(path, fcompile=cc.cross_compiler(cross_cc))
    return path


def export_for_board(mod) -> str:
    """MetaSchedule export hook: link the candidate as an aarch64 .so with the cross compiler."""
    from tir_armq.targets import AARCH64_A72

    return _export(mod, AARCH64_A72.cross_cc)


def export_for_armv7(mod) -> str:
    """MetaSchedule export hook: link the candidate as an armv7 (hard-float) .so."""
    from tir_armq.targets import ARMV7_A7

    return _export(mod, ARMV7_A7.cross_cc)


def board_builder(isa: str = "aarch64", max_workers: int | None = None, timeout_sec: float = 600.0) -> LocalBuilder:
    """LocalBuilder whose artifacts are shared objects for `isa` ("aarch64", "armv7") and that knows
    our intrinsics.

    The timeout is generous: candidates of TVM's default space that unroll a large layer keep LLVM
    busy for minutes on a loaded 2-core host, and a timed-out build is a lost candidate."""
    exports = {"aarch64": export_for_board, "armv7": export_for_armv7}
    if isa not in exports:
        raise ValueError(f"isa: the board builder links aarch64 or armv7 libraries, not {isa!r}")
    return LocalBuilder(
        max_workers=max_workers, timeout_sec=timeout_sec,
        f_export=exports[isa], initializer=register_intrinsics,
    )


def arguments_for(args_info, seed: int = 0) -> list[np.ndarray]:
    """Deterministic inputs of each argument's shape and dtype (values never change the count of a
    data-independent kernel, but stay fixed so every candidate sees the same)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for info in args_info:
        _, dtype, shape = info.as_json()
        dtype, shape = str(dtype), tuple(int(s) for s in shape)
        if dtype.startswith(("int", "uint")):
            lim = np.iinfo(dtype)
            arrays.append(rng.integers(max(lim.min, -100), min(lim.max, 100), size=shape, endpoint=True, dtype=dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(dtype))
    return arrays


@derived_object
class _DoneFuture(PyRunnerFuture):
    def __init__(self, future: Future) -> None:
        super().__init__()
        self.future = future

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> RunnerResult:
        return self.future.result()


class _EstimateRunner(PyRunner):
    """What the cycle-estimate runners share: candidates measured on a thread pool, and a candidate
    that crashes or hangs gets an error result (tuning goes on). Subclasses say how one is costed."""

    def __init__(self, hz: float, max_workers: int, timeout_sec: float) -> None:
        super().__init__()
        self.hz = hz
        self.timeout_sec = timeout_sec
        self.pool = ThreadPoolExecutor(max_workers=max_workers)

    def run(self, runner_inputs: list[RunnerInput]) -> list[RunnerFuture]:
        return [_DoneFuture(self.pool.submit(self._measure, inp)) for inp in runner_inputs]

    def _measure(self, inp: RunnerInput) -> RunnerResult:
        try:
            cost = self._cost(inp.artifact_path, arguments_for(inp.args_info))
        except Exception as err:  # noqa: BLE001 - any failure of one candidate is its result
            return RunnerResult(None, f"{type(self).__name__}: {type(err).__name__}: {err}"[:4000])
        return RunnerResult([cost.seconds(self.hz)], None)

    def _cost(self, artifact_path: str, args: list[np.ndarray]):
        raise NotImplementedError


@derived_object
class CycleEstimateRunner(_EstimateRunner):
    """Runs each candidate under qemu with the counting plugin; reports estimated cycles on `model`
    as seconds at `hz`. A candidate that crashes or hangs gets an error result; tuning goes on."""

    def __init__(self, model: CpuModel = CORTEX_A72, hz: float = NOMINAL_HZ, max_workers: int = 1,
                 timeout_sec: float = 300.0, threads: int = 1) -> None:
        super().__init__(hz, max_workers, timeout_sec)
        self.model = model
        self.threads = threads
        self._guests = threading.local()  # one long-lived guest per worker thread

    def _cost(self, artifact_path: str, args: list[np.ndarray]):
        if self.threads > 1:
            # The latency on the task's threads (`measure.threads`): a guest process per candidate,
            # each parallel launch costed on its own.
            from .threads import measure_threaded

            return measure_threaded(artifact_path, ENTRY, args, threads=self.threads, model=self.model, warmup=1,
                                    calls=1, timeout=self.timeout_sec)
        guest = getattr(self._guests, "guest", None)
        if guest is None:
            guest = self._guests.guest = CountingGuest(self.model, timeout=self.timeout_sec)
        # Kernels are data-independent and deterministic: one warm-up and one counted call suffice.
        return guest.measure(artifact_path, ENTRY, args, warmup=1, calls=1)


@derived_object
class Armv7CycleEstimateRunner(_EstimateRunner):
    """`CycleEstimateRunner` for armv7 candidates: each runs under qemu-arm in the C harness with the
    counting plugin, ranked by the Cortex-A7 stand-in model's cycles (`CORTEX_A7_PROXY`). The harness
    calls a symbol, not a module's entry: `symbol` is the PrimFunc's global symbol. A candidate that
    crashes or hangs gets an error result; tuning goes on."""

    def __init__(self, symbol: str, hz: float | None = None, max_workers: int = 1, timeout_sec: float = 300.0) -> None:
        from .armv7_cost import NOMINAL_HZ_A7
        from .mca import CORTEX_A7_PROXY, BlockCostCache

        super().__init__(hz or NOMINAL_HZ_A7, max_workers, timeout_sec)
        self.symbol = symbol
        self.cache = BlockCostCache(CORTEX_A7_PROXY)

    def _cost(self, artifact_path: str, args: list[np.ndarray]):
        from .armv7_cost import measure_armv7_kernel

        return measure_armv7_kernel(artifact_path, self.symbol, args, warmup=1, calls=1,
                                    timeout=self.timeout_sec, cache=self.cache)
