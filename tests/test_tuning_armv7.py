"""`tune` for the armv7 target: candidates linked for armv7 and ranked under qemu-arm (the C harness
with the counting plugin); the records land in the armv7 database only, and the best one replays
bit-exact on ARMv7. One depthwise task (dwconv_int8_mla8, requantize fused) and one pointwise
conv_c8 task."""

from __future__ import annotations

import numpy as np
import pytest
import tvm

from cases import requantize_params
from runners import tune_in_subprocess
from tir_armq.database import TargetDatabase
from tir_armq.kernels import CONV_C8, DWCONV_INT8_MLA8
from tir_armq.reference import reference_output
from tir_armq.targets import AARCH64_A72, ARMV7_A7
from tir_armq.tuning import Task
from tir_armq.workloads import conv_spec, depthwise_spec

pytestmark = [pytest.mark.armv7, pytest.mark.slow]

DEPTHWISE = depthwise_spec((1, 8, 8, 32), (1, 3, 3, 32), padding="SAME", data_zero_point=-3,
                           output_dtype="int8", rounding="upward")
POINTWISE = conv_spec((1, 4, 4, 32), (16, 1, 1, 32), data_zero_point=5, output_dtype="int8",
                      rounding="single")


def _inputs(spec, rng):
    data = rng.integers(-128, 127, spec.data_shape, endpoint=True, dtype=np.int8)
    weight = rng.integers(-127, 127, spec.weight_shape, endpoint=True, dtype=np.int8)
    bias = rng.integers(-(1 << 16), 1 << 16, spec.out_channels, dtype=np.int32)
    return data, weight, bias, requantize_params(spec, rng)


KERNELS = ((DWCONV_INT8_MLA8, DEPTHWISE), (CONV_C8, POINTWISE))


def tasks() -> list[Task]:
    return [Task(kernel.kernel_name(spec), kernel.build(spec)) for kernel, spec in KERNELS]


def test_armv7_tuning_stores_bit_exact_records(tmp_path):
    from tir_armq.board.armv7 import run_armv7

    rng = np.random.default_rng(3)
    cases = []  # (task, kernel, layer, the kernel's arguments, expected output)
    for task, (kernel, spec) in zip(tasks(), KERNELS):
        inputs = _inputs(spec, rng)
        cases.append((task, kernel, spec, kernel.arguments(spec, *inputs), reference_output(spec, *inputs)))
    # In a process of its own: MetaSchedule's logging set-up fails the second tune_tir of a pytest
    # process, and test_tuning_resilience tunes too.
    tune_in_subprocess(f"""
from test_tuning_armv7 import tasks
tune(tasks(), ARMV7_A7, Path({str(tmp_path / "db")!r}), trials=2)
""")

    db = TargetDatabase(tmp_path / "db", ARMV7_A7)
    assert not (tmp_path / "db" / AARCH64_A72.name).exists()
    for task, kernel, spec, args, expected in cases:
        assert db.count(task.func) >= 2, task.name
        sch = db.best_schedule(task.func)
        ex = tvm.compile(sch.mod, target=ARMV7_A7.tvm_target())
        got = run_armv7(ex, kernel.kernel_name(spec), args)[-1][..., :spec.out_channels]
        np.testing.assert_array_equal(got, expected, err_msg=task.name)
