"""Every candidate of the depthwise search spaces (the design spaces of `dwconv_int8_mla8` and of
`dwconv_int16`) is bit-exact: design spaces replayed with random decisions (what the evolutionary
search does), built for the host, against the numpy reference."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import s_tir

from cases import DEPTHWISE_TABLE, requantize_params
from tir_armq.kernels import DWCONV_INT8_MLA8, DWCONV_INT16
from tir_armq.reference import reference_output
from tir_armq.workloads import depthwise_spec
from tir_armq.workloads.params import dtype_range

HOST = tvm.target.Target("llvm")
SAMPLES = 4  # random decision sets per design space

# dwconv_int8_mla8 needs TFLite's int8 scheme: int8 data, int8 weights with zero point 0.
INT8_LAYERS = {
    **{k: v for k, v in DEPTHWISE_TABLE.items() if DWCONV_INT8_MLA8.applies(depthwise_spec(**v))},
    "c100_stride2_5x5": dict(data_shape=(1, 9, 11, 100), weight_shape=(1, 5, 5, 100), stride=2,
                             padding="SAME", data_zero_point=127),
}
# The same layers with the fused requantize epilogue (int8 out).
INT8_LAYERS.update({f"{k}-requantize": {**v, "output_dtype": "int8"} for k, v in list(INT8_LAYERS.items())})


def _inputs(spec, seed: int, symmetric: bool = False) -> tuple:
    """data, weight, bias uniform over their dtypes (and the RequantizeParams when the layer
    requantizes); `symmetric`: weights in [-127, 127], dwconv_int8_mla8's contract."""
    rng = np.random.default_rng(seed)

    def draw(shape, dtype):
        lo, hi = dtype_range(dtype)
        return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)

    data = draw(spec.data_shape, spec.data_dtype)
    weight = draw(spec.weight_shape, spec.weight_dtype)
    if symmetric:
        weight = np.maximum(weight, -127).astype(np.int8)
    bias = rng.integers(-(1 << 20), 1 << 20, size=spec.out_channels, dtype=np.int32)
    return (data, weight, bias, requantize_params(spec, rng)) if spec.requantizes else (data, weight, bias)


def _candidates(kernel, func, seed: int):
    """Replays of each design space of `kernel` with fresh decisions. A replay that the schedule
    refuses (e.g. a compute location that inlines the stage the intrinsic reads) is no candidate:
    MetaSchedule discards it the same way. Each design space must still give valid ones."""
    for k, space in enumerate(kernel.rule.apply(func, HOST, True)):
        valid = 0
        for s in range(3 * SAMPLES):
            sch = s_tir.Schedule(func, seed=seed * 100 + k * 10 + s)
            try:
                space.trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=None)
            except s_tir.schedule.ScheduleError:
                continue
            valid += 1
            yield sch
            if valid == SAMPLES:
                break
        assert valid, f"design space {k} gave no valid candidate in {3 * SAMPLES} replays"


def _run(sch, kernel, spec, arrays):
    ex = tvm.compile(sch.mod, target=HOST)
    args = [tvm.runtime.tensor(a) for a in kernel.arguments(spec, *arrays)]
    ex[kernel.kernel_name(spec)](*args)
    return args[-1].numpy()[..., :spec.out_channels]


@pytest.mark.parametrize("name", sorted(INT8_LAYERS))
def test_dwconv_int8_mla8_candidates_match_reference(name):
    spec = depthwise_spec(**INT8_LAYERS[name])
    arrays = _inputs(spec, seed=3, symmetric=True)
    expected = reference_output(spec, *arrays)
    func = DWCONV_INT8_MLA8.build(spec)
    np.testing.assert_array_equal(_run(s_tir.Schedule(func), DWCONV_INT8_MLA8, spec, arrays), expected)
    for sch in _candidates(DWCONV_INT8_MLA8, func, seed=1):
        got = _run(sch, DWCONV_INT8_MLA8, spec, arrays)
        np.testing.assert_array_equal(got, expected, err_msg=str(sch.trace))


INT16_LAYERS = ["c100_not_multiple_of_8", "multiplier2", "uint8_asymmetric", "5x5_stride2"]


@pytest.mark.slow
@pytest.mark.parametrize("output_dtype", ["int32", "requantize"])
@pytest.mark.parametrize("name", INT16_LAYERS)
def test_dwconv_int16_candidates_match_reference(name, output_dtype):
    layer = DEPTHWISE_TABLE[name]
    if output_dtype == "requantize":
        layer = {**layer, "output_dtype": layer.get("data_dtype", "int8")}
    spec = depthwise_spec(**layer)
    arrays = _inputs(spec, seed=5)
    expected = reference_output(spec, *arrays)
    for sch in _candidates(DWCONV_INT16, DWCONV_INT16.build(spec), seed=2):
        np.testing.assert_array_equal(_run(sch, DWCONV_INT16, spec, arrays), expected, err_msg=str(sch.trace))


def test_dwconv_int8_mla8_refuses_other_schemes():
    spec = depthwise_spec(**DEPTHWISE_TABLE["uint8_asymmetric"])
    assert not DWCONV_INT8_MLA8.applies(spec)
    with pytest.raises(ValueError, match="does not compute this layer"):
        DWCONV_INT8_MLA8.build(spec)
    # TFLite's int8 scheme never has a -128 weight; the 8-bit products rely on it.
    spec = depthwise_spec(**DEPTHWISE_TABLE["mnv2_3x3_s1"])
    data, weight, bias = _inputs(spec, seed=6)
    weight.flat[0] = -128
    assert DWCONV_INT8_MLA8.applies(spec) and not DWCONV_INT8_MLA8.applies(spec, weight)
    with pytest.raises(ValueError, match="does not compute this layer"):
        DWCONV_INT8_MLA8.arguments(spec, data, weight, bias)


@pytest.mark.parametrize("name", ["c100_stride2_5x5-requantize", "stride2_same-requantize"])
def test_start_points_include_the_inlined_padding(name):
    """The candidates a tuning run measures first (`tuning.start_points`): the design spaces, and the
    one-decision step to an inlined padded input; all bit-exact."""
    from tir_armq.schedules.common import has_block
    from tir_armq.tuning import start_points

    spec = depthwise_spec(**INT8_LAYERS[name])
    arrays = _inputs(spec, seed=4, symmetric=True)
    expected = reference_output(spec, *arrays)
    points = start_points(DWCONV_INT8_MLA8.build(spec), HOST)
    spaces = DWCONV_INT8_MLA8.rule.apply(DWCONV_INT8_MLA8.build(spec), HOST, True)
    assert len(points) > len(spaces)
    inlined = [p for p in points if not has_block(p, "data_pad")]
    assert inlined, "no start point inlines data_pad"
    for sch in points:
        got = _run(sch, DWCONV_INT8_MLA8, spec, arrays)
        np.testing.assert_array_equal(got, expected, err_msg=str(sch.trace))


def _accumulations(sch) -> tuple[int, int]:
    """(accumulator updates whose value tests the padding, those that do not) in `sch` lowered
    (tvm.compile's TIR passes up to LoopPartition and the unroll after it)."""
    from tvm import tirx

    lowered = tvm.transform.Sequential([
        s_tir.transform.LowerInitBlock(), s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(), s_tir.transform.CompactBufferAllocation(),
        s_tir.transform.LowerMatchBuffer(), s_tir.transform.StmtSimplify(),
        s_tir.transform.LowerOpaqueBlock(), tirx.transform.FlattenBuffer(), s_tir.transform.LoopPartition(),
        tirx.transform.VectorizeLoop(), tirx.transform.UnrollLoop(), tirx.transform.StmtSimplify(),
    ])(sch.mod)
    updates = [line for line in lowered["main"].script().splitlines()
               if re.match(r"\s*output(_\d+)?\[.*\] = output", line)]
    tested = sum("if_then_else" in line for line in updates)
    return tested, len(updates) - tested


@pytest.mark.parametrize("name", ["stride2_same-requantize", "c100_stride2_5x5-requantize"])
def test_inlined_padding_costs_no_test_after_loop_partition(name):
    """With data_pad inlined, LoopPartition splits the hinted pixel loops where the padding's
    conditions change, and each piece's loads are then unconditional (rows and column tiles; the
    fused plane's y = p // OW bounds split only in part); without the hints the taps that can
    reach the border test their bounds in every tile."""
    from tir_armq.schedules.common import has_block
    from tir_armq.tuning import start_points

    spec = depthwise_spec(**INT8_LAYERS[name])
    points = start_points(DWCONV_INT8_MLA8.build(spec), HOST)
    inlined = [p for p in points if not has_block(p, "data_pad")]
    assert inlined
    unconditional = 0
    for sch in inlined:
        tested, plain = _accumulations(sch)
        assert plain, f"{tested} tested and {plain} plain accumulations\n{sch.trace}"
        unconditional += tested == 0
        hinted = [lp for lp in sch.get_loops(sch.get_sblock("conv_update"))
                  if "pragma_loop_partition_hint" in sch.get(lp).annotations]
        assert hinted
        for lp in hinted:
            sch.unannotate(lp, "pragma_loop_partition_hint")
        tested, _ = _accumulations(sch)
        assert tested
    assert unconditional  # the row and column tile orders
