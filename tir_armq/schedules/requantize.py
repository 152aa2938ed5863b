"""The standalone requantize epilogue as a dlight-style rule: channels in vectors of 16, 8 or 4
lanes, each a requantize intrinsic (SQRDMULH/SRSHL on NEON).

A channel count that none of them divides stays in the desc's exact int64 scalar form: correct,
slow, and never a MobileNet layer. The conv schedules place and tensorize their fused epilogue
(the same block) with `place_requantize`.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..workloads.requantize import NAME
from .vadd import place_residual_add, tensorize_add
from .common import has_block, is_kernel, loop_extent

LANES = (16, 8, 4)


def requantize_lanes(channels: int) -> int | None:
    """The widest intrinsic that tiles `channels` exactly."""
    return next((lanes for lanes in LANES if channels % lanes == 0), None)


def tensorize_requantize(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV, target: Target,
                         out_dtype: str, lanes: int | None = None, pixels_inner: bool = False) -> bool:
    """Split the block's innermost (channel) loop by `lanes` (default: the widest that divides it)
    and tensorize; False (block untouched) when no width divides it. `pixels_inner`: the channel
    vectors outside the pixel loop above them, so that a vector's multipliers and shifts are loaded
    once per row instead of once per pixel."""
    attrs = sch.mod["main"].attrs
    rounding = str(attrs.get("tir_armq.rounding", "away"))
    if bool(attrs.get("tir_armq.right_shifts", False)):
        rounding += "_right"
    channel = sch.get_loops(block)[-1]
    if lanes is None:
        lanes = requantize_lanes(loop_extent(sch, channel))
    if lanes is None:
        return False
    outer, inner = sch.split(channel, [None, lanes])
    if pixels_inner:
        sch.reorder(outer, sch.get_loops(block)[-3])
    sch.tensorize(inner, intrinsics.for_target(target).REQUANTIZE[(lanes, out_dtype, rounding)])
    return True


def place_requantize(sch: s_tir.Schedule, loop: s_tir.schedule.LoopRV, target: Target,
                     lanes: int | None = None, pixels_inner: bool = False) -> None:
    """The fused epilogue of a requantizing conv workload (no-op for an int32 one): computed right
    after the int32 tile it reads, under `loop`, and tensorized; so is a fused residual add after
    it. Under a loop whose channel extent is a sampled tile, pass a fixed `lanes`: the trace then
    replays for every tile it divides."""
    if not has_block(sch, "requantize"):
        return
    block = sch.get_sblock("requantize")
    # Unit loops kept: under a sampled tile of extent 1 the loop count would change with the
    # decision, and MetaSchedule's replay of the trace's GetLoops would fail (it aborts tune_tir).
    sch.reverse_compute_at(block, loop, preserve_unit_loops=True)
    # Both placed before either is tensorized: compute-at needs the blocks as the workload made them.
    residual = place_residual_add(sch, loop)
    tensorize_requantize(sch, block, target, str(sch.get(block).writes[0].source.dtype), lanes, pixels_inner)
    if residual is not None:
        tensorize_add(sch, residual, sch.get_loops(residual)[-1], target)


class RequantizeQ8(ScheduleRule):
    """One fixed schedule (no decisions worth a search): the same for `tunable` True and False."""

    def space_size(self, func: tirx.PrimFunc) -> int:
        return 1

    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        if not is_kernel(func, NAME):
            return None
        sch = s_tir.Schedule(func)
        block = sch.get_sblock("requantize")
        out_dtype = str(sch.get(block).writes[0].source.dtype)
        tensorize_requantize(sch, block, target, out_dtype)
        return sch
