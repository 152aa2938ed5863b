"""The cost measure on the emulated board: exact repeatable counts, and a cycle estimate that
ranks an obviously slower kernel as slower (what the MetaSchedule runner relies on)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import s_tir

from tir_armq.build import compile_default
from tir_armq.measure.cost import measure_kernel
from tir_armq.measure.mca import CORTEX_A53, CORTEX_A72
from tir_armq.targets import AARCH64_A72
from tir_armq.workloads import depthwise_spec

pytestmark = pytest.mark.board

SPEC = depthwise_spec((1, 10, 10, 32), (1, 3, 3, 32), padding="SAME", data_zero_point=-3)


def _inputs():
    rng = np.random.default_rng(7)
    data = rng.integers(-128, 127, size=SPEC.data_shape, endpoint=True, dtype=np.int8)
    weight = rng.integers(-127, 127, size=SPEC.weight_shape, endpoint=True, dtype=np.int8)
    bias = rng.integers(-1000, 1000, size=SPEC.out_channels, dtype=np.int32)
    return SPEC.arguments(data, weight, bias)


def _channel_outer_scalar():
    """The same computation with the channel loop outermost: every inner loop walks a strided
    channel, so LLVM cannot vectorize it and each MAC is a scalar multiply-add."""
    sch = s_tir.Schedule(SPEC.prim_func())
    sch.compute_inline("data_pad")
    sch.compute_inline("data_vec")
    n, oh, ow, c, m, kh, kw = sch.get_loops("conv")
    sch.reorder(c, n, oh, ow, m, kh, kw)
    return tvm.compile(sch.mod, target=AARCH64_A72.tvm_target())


def test_counts_are_identical_across_runs():
    ex = compile_default(SPEC.prim_func(), AARCH64_A72)
    first = measure_kernel(ex, SPEC.op_name, _inputs())
    second = measure_kernel(ex, SPEC.op_name, _inputs())
    assert first == second
    assert first.instructions > SPEC.macs / 16  # a kernel ran: at least one instruction per 16 MACs


def test_scalar_kernel_costs_more_than_tensorized():
    tensorized = measure_kernel(compile_default(SPEC.prim_func(), AARCH64_A72), SPEC.op_name, _inputs())
    scalar = measure_kernel(_channel_outer_scalar(), SPEC.op_name, _inputs())
    assert scalar.cycles > 2 * tensorized.cycles
    assert scalar.instructions > 2 * tensorized.instructions


def test_in_order_a53_is_estimated_slower_than_a72():
    ex = compile_default(SPEC.prim_func(), AARCH64_A72)
    a72 = measure_kernel(ex, SPEC.op_name, _inputs(), model=CORTEX_A72)
    a53 = measure_kernel(ex, SPEC.op_name, _inputs(), model=CORTEX_A53)
    assert a53.instructions == a72.instructions  # same code, same path
    assert a53.cycles > a72.cycles  # dual-issue in-order vs 3-wide out-of-order
