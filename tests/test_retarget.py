"""A one-thread record rebuilt for four threads (`kernels.retarget`): the same design space at the
same decisions, with the four-thread space's parallel loops. Bit-exactness of such builds on the
board: `test_model_build`'s four-thread MobileNetV2."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
import tvm_ffi
from tvm import s_tir, tirx

from tir_armq.database import TargetDatabase, replayed
from tir_armq.kernels import CONV_C2, CONV_C8, DWCONV_INT8_MLA8, design_spaces, with_shift_promise
from tir_armq.kernels.retarget import retarget, space_index
from tir_armq.requantize import TFLITE_ROUNDING, RequantizeParams
from tir_armq.schedules.dwconv_int8_mla8 import INT8_SPACES
from tir_armq.targets import AARCH64_A72
from tir_armq.workloads import conv_spec, depthwise_spec

ONE, FOUR = AARCH64_A72, AARCH64_A72.with_threads(4)


def _dwconv_int8_out(hw: int, channels: int):
    """A depthwise layer as a model build runs it (int8 out, requantize fused): every design space,
    the per-tile epilogue's channels_outermost included."""
    spec = depthwise_spec((1, hw, hw, channels), (1, 3, 3, channels), padding="SAME", output_dtype="int8",
                          rounding=TFLITE_ROUNDING["depthwise"])
    scales = np.full(channels, 0.004, np.float32)
    requantize = RequantizeParams.from_scales(0.02, scales, 0.1, -5, (-128, 127), "int8", spec.rounding)
    return DWCONV_INT8_MLA8.build(with_shift_promise(spec, requantize))


FUNCS = {
    "dwconv": DWCONV_INT8_MLA8.build(depthwise_spec((1, 16, 16, 32), (1, 3, 3, 32), padding="SAME")),
    # Channels 8 (MobileNetV1-0.25's first depthwise): fewer than one 16-lane tile on 4 threads.
    "dwconv_int8_c8": _dwconv_int8_out(12, 8),
    "dwconv_int8_c48": _dwconv_int8_out(6, 48),
    "conv_c2": CONV_C2.build(conv_spec((1, 8, 8, 24), (32, 1, 1, 24), padding="VALID")),
    "conv_c8": CONV_C8.build(conv_spec((1, 6, 6, 64), (16, 1, 1, 64), padding="VALID")),
}


def _decisions(trace: s_tir.schedule.Trace) -> list[str]:
    return [str(trace.get_decision(i)) for i in trace.insts if i.kind.name.startswith("Sample")]


def _sampled(space: s_tir.Schedule, func, seed: int) -> s_tir.Schedule:
    """The design space at random decisions (as MetaSchedule's search samples one): the first of
    the seeds from `seed` on whose decisions replay."""
    from tir_armq.database import schedule_of_copy

    for attempt in range(seed, seed + 50):
        sch = schedule_of_copy(func)
        sch.seed(attempt)
        try:
            s_tir.schedule.Trace(space.trace.insts, {}).apply_to_schedule(sch, remove_postproc=True)
        except s_tir.schedule.ScheduleError:
            continue
        return sch
    raise AssertionError(f"no replay of the design space in 50 seeds from {seed}")


def _record(func, sch, root):
    db = TargetDatabase(root, ONE, create=True)
    db.commit(func, sch, 1e-5)
    (record,) = db.records(func, limit=1)
    return record


@pytest.mark.parametrize("kind", sorted(FUNCS))
def test_one_thread_record_rebuilt_on_four(kind, tmp_path):
    func = FUNCS[kind]
    for index, space in enumerate(design_spaces(func, ONE.tvm_target())):
        record = _record(func, _sampled(space, func, seed=100 * index + 2), tmp_path / f"{kind}{index}")
        assert space_index(func, record.trace, ONE.tvm_target()) == index
        four = retarget(func, record, ONE.tvm_target(), FOUR.tvm_target())
        assert four is not None, (kind, index)
        assert _decisions(four.trace) == _decisions(record.trace)  # the tuned choices carried over
        assert "T.parallel" in four.mod.script() and "T.parallel" not in replayed(record, func).mod.script()
        # Rebuilt for the thread count it was tuned on, a record is the schedule it was measured as.
        same = retarget(func, record, ONE.tvm_target(), ONE.tvm_target())
        assert tvm_ffi.structural_hash(same.mod) == tvm_ffi.structural_hash(replayed(record, func).mod)


def test_pad_between_the_fused_loops_is_not_rebuilt(tmp_path):
    """The depthwise fused-plane space fuses its channel tiles with its pixel tiles on several
    threads; a record whose padded input sits between the two (location 1: under the channel tiles)
    cannot be rebuilt so and gives None (the build then takes the fixed schedule)."""
    func = FUNCS["dwconv_int8_c48"]
    index = next(i for i, (order, _) in enumerate(INT8_SPACES) if order == "fused_pixels")
    record = _record(func, _sampled(design_spaces(func, ONE.tvm_target())[index], func, seed=1), tmp_path)
    (location,) = [record.trace.get_decision(i) for i in record.trace.insts
                   if i.kind.name == "SampleComputeLocation"]
    assert int(location) == 1
    assert retarget(func, record, ONE.tvm_target(), FOUR.tvm_target()) is None


def test_trace_of_no_space_is_not_rebuilt(tmp_path):
    """A record whose trace is none of the rule's spaces (another variant's, an older rule's) gives None."""
    dw, c2 = FUNCS["dwconv"], FUNCS["conv_c2"]
    db = TargetDatabase(tmp_path, ONE, create=True)
    db.commit(dw, design_spaces(dw, ONE.tvm_target())[0], 1e-5)
    (record,) = db.records(dw, limit=1)
    assert space_index(c2, record.trace, ONE.tvm_target()) is None
    assert retarget(c2, record, ONE.tvm_target(), FOUR.tvm_target()) is None


def _serial_stores(mod: tvm.IRModule, buffer: str) -> int:
    """Stores to `buffer` outside every parallel loop once LoopPartition has split the padded border
    off (the lowering `tvm.compile` runs, up to that pass)."""
    passes = [s_tir.transform.LowerInitBlock(), s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
              s_tir.transform.ConvertBlocksToOpaque(), s_tir.transform.CompactBufferAllocation(),
              s_tir.transform.LowerMatchBuffer(), s_tir.transform.LowerOpaqueBlock(),
              tirx.transform.FlattenBuffer(), s_tir.transform.LoopPartition()]
    with FOUR.tvm_target(), tvm.transform.PassContext(opt_level=3):
        lowered = tvm.transform.Sequential(passes)(mod)
    count, stack = 0, [(lowered["main"].body, False)]
    while stack:
        node, parallel = stack.pop()
        if isinstance(node, tirx.For):
            parallel = parallel or node.kind == tirx.ForKind.PARALLEL
        if isinstance(node, tirx.BufferStore) and node.buffer.name == buffer:
            count += not parallel
        children = [getattr(node, f, None) for f in ("body", "then_case", "else_case")]
        stack += [(c, parallel) for c in [*children, *getattr(node, "seq", ())] if c is not None]
    return count


def _padding_inlined(space: s_tir.Schedule, func) -> s_tir.Schedule:
    """The design space at its initial decisions, but the padded input inlined (as every shipped
    depthwise record has it): the conditional loads LoopPartition splits off at the border."""
    from tir_armq.database import schedule_of_copy
    from tir_armq.schedules.common import INLINE

    trace = space.trace
    decisions = {inst: (INLINE if inst.kind.name == "SampleComputeLocation" else trace.get_decision(inst))
                 for inst in trace.insts if inst.kind.name.startswith("Sample")}
    sch = schedule_of_copy(func)
    s_tir.schedule.Trace(trace.insts, decisions).apply_to_schedule(sch, remove_postproc=True)
    return sch


def test_padded_border_rows_run_in_the_parallel_loop():
    """LoopPartition splits a hinted parallel loop's padded border rows off the launch (they ran on the
    launching thread alone: 3 of 112 rows of MNv2's first depthwise). Split in one run of rows per
    thread, every row of the output is written inside the parallel loop: the depthwise spaces whose
    rows are parallel (channels_outermost: one launch for all channel tiles) and the im2col stem."""
    from tir_armq.kernels import CONV_C8_IM2COL, fixed_schedule

    dwconv = _dwconv_int8_out(16, 32)
    im2col = CONV_C8_IM2COL.build(conv_spec((1, 32, 32, 3), (16, 3, 3, 3), stride=2, padding="SAME",
                                            output_dtype="int32"))
    spaces = dict(zip(INT8_SPACES, design_spaces(dwconv, FOUR.tvm_target())))
    outermost = _padding_inlined(spaces["channels_outermost", "tile"], dwconv)
    for func, sch in ((dwconv, _padding_inlined(spaces["channels_outer", "row"], dwconv)),
                      (dwconv, outermost), (im2col, fixed_schedule(im2col, FOUR.tvm_target()))):
        output = func.params[-1].name  # the buffer and its handle share the name
        assert "T.parallel" in sch.mod.script()
        assert _serial_stores(sch.mod, output) == 0, output
    assert outermost.mod.script().count("T.parallel") == 1  # the rows' runs, above the channel tiles
    assert outermost.mod.script().index("T.parallel") < outermost.mod.script().index("c_0 in")
