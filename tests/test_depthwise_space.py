"""Every candidate of the depthwise search space is bit-exact: design spaces replayed with random
decisions (what the evolutionary search does), built for the host, against the numpy reference."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import s_tir

from cases import Case, DEPTHWISE_TABLE
from tir_armq.reference import reference_output
from tir_armq.schedules.depthwise_space import DepthwiseSpace
from tir_armq.workloads import depthwise_spec
from tir_armq.workloads.depthwise_int8 import int8_path_applies

HOST = tvm.target.Target("llvm")
SAMPLES = 4  # random decision sets per design space

# The int8 path needs TFLite's int8 scheme: int8 data, int8 weights with zero point 0.
INT8_LAYERS = {
    **{k: v for k, v in DEPTHWISE_TABLE.items() if int8_path_applies(depthwise_spec(**v))},
    "c100_stride2_5x5": dict(data_shape=(1, 9, 11, 100), weight_shape=(1, 5, 5, 100), stride=2, padding="SAME",
                             data_zero_point=127),
}
# The same layers with the fused requantize epilogue (int8 out).
INT8_LAYERS.update({f"{k}-requantize": {**v, "output_dtype": "int8"} for k, v in list(INT8_LAYERS.items())})


def _symmetric_inputs(case: Case):
    """The int8 path's contract: weights in [-127, 127]."""
    data, weight, *rest = case.inputs()
    return data, np.maximum(weight, -127).astype(np.int8), *rest


def _candidates(func, seed: int):
    """Replays of each design space with fresh decisions. A replay that the schedule refuses (e.g.
    a compute location that inlines the stage the intrinsic reads) is no candidate: MetaSchedule
    discards it the same way. Each design space must still give valid ones."""
    rule = DepthwiseSpace()
    for k, space in enumerate(rule.apply(func, HOST, True)):
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


def _run(sch, spec, arrays):
    ex = tvm.compile(sch.mod, target=HOST)
    args = [tvm.runtime.tensor(a) for a in spec.arguments(*arrays)]
    ex[spec.op_name](*args)
    return args[-1].numpy()


@pytest.mark.parametrize("name", sorted(INT8_LAYERS))
def test_int8_path_candidates_match_reference(name):
    spec = depthwise_spec(**INT8_LAYERS[name])
    arrays = _symmetric_inputs(Case(spec, seed=3))
    expected = reference_output(spec, *arrays)
    np.testing.assert_array_equal(_run(s_tir.Schedule(spec.prim_func("int8")), spec, arrays), expected)
    for sch in _candidates(spec.prim_func("int8"), seed=1):
        np.testing.assert_array_equal(_run(sch, spec, arrays), expected, err_msg=str(sch.trace))


INT16_LAYERS = ["c100_not_multiple_of_8", "multiplier2", "uint8_asymmetric", "5x5_stride2"]


@pytest.mark.parametrize("output_dtype", ["int32", "requantize"])
@pytest.mark.parametrize("name", INT16_LAYERS)
def test_int16_path_candidates_match_reference(name, output_dtype):
    layer = DEPTHWISE_TABLE[name]
    if output_dtype == "requantize":
        layer = {**layer, "output_dtype": layer.get("data_dtype", "int8")}
    spec = depthwise_spec(**layer)
    arrays = Case(spec, seed=5).inputs()
    expected = reference_output(spec, *arrays)
    for sch in _candidates(spec.prim_func("int16"), seed=2):
        np.testing.assert_array_equal(_run(sch, spec, arrays), expected, err_msg=str(sch.trace))


def test_int8_path_refuses_other_schemes():
    spec = depthwise_spec(**DEPTHWISE_TABLE["uint8_asymmetric"])
    with pytest.raises(ValueError, match="path"):
        spec.prim_func("int8")


@pytest.mark.parametrize("name", ["c100_stride2_5x5-requantize", "stride2_same-requantize"])
def test_start_points_include_the_inlined_padding(name):
    """The candidates a tuning run measures first (`tuning.start_points`): the design spaces, and the
    one-decision step to an inlined padded input; all bit-exact."""
    from tir_armq.schedules.common import has_block
    from tir_armq.tuning import start_points

    spec = depthwise_spec(**INT8_LAYERS[name])
    arrays = _symmetric_inputs(Case(spec, seed=4))
    expected = reference_output(spec, *arrays)
    points = start_points(spec.prim_func("int8"), HOST)
    spaces = DepthwiseSpace().apply(spec.prim_func("int8"), HOST, True)
    assert len(points) > len(spaces)
    inlined = [p for p in points if not has_block(p, "data_pad")]
    assert inlined, "no start point inlines data_pad"
    for sch in points:
        np.testing.assert_array_equal(_run(sch, spec, arrays), expected, err_msg=str(sch.trace))



def _accumulations(sch) -> tuple[int, int]:
    """(accumulator updates whose value tests the padding, those that do not) in `sch` lowered
    (tvm.compile's TIR passes up to LoopPartition and the unroll after it)."""
    from tvm import tirx

    lowered = tvm.transform.Sequential([
        s_tir.transform.LowerInitBlock(), s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(), s_tir.transform.CompactBufferAllocation(),
        s_tir.transform.LowerMatchBuffer(), s_tir.transform.StmtSimplify(), s_tir.transform.LowerOpaqueBlock(),
        tirx.transform.FlattenBuffer(), s_tir.transform.LoopPartition(), tirx.transform.VectorizeLoop(),
        tirx.transform.UnrollLoop(), tirx.transform.StmtSimplify(),
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
    inlined = [p for p in start_points(spec.prim_func("int8"), HOST) if not has_block(p, "data_pad")]
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
