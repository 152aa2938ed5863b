"""Default rule of the quantized ADD: pixels in one loop, channels in vectors of the quantized add
intrinsic (SQRDMULH/SRSHL on NEON; 16, 8 or 4 lanes, the widest dividing the channels). A tensor
with a scalar tail (size % 16 != 0) selects TFLite's form by flat index and stays scalar int64:
correct, slow, and rare (MobileNetV2 0.35's 3x3x56).

`place_residual_add` and `tensorize_add` serve a conv's fused residual-add epilogue.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..workloads.add import NAME
from .common import has_block, is_kernel, loop_extent

LANES = (16, 8, 4)
RESIDUAL_ADD = "residual_add"  # the block of a conv workload's fused epilogue


def tensorize_add(sch: s_tir.Schedule, block: s_tir.schedule.SBlockRV, loop: s_tir.schedule.LoopRV,
                  target: Target) -> bool:
    """Split `loop` (the block's innermost) by the widest lanes that divide it and tensorize;
    False (untouched) when none does."""
    lanes = next((n for n in LANES if loop_extent(sch, loop) % n == 0), None)
    if lanes is None:
        return False
    dtype = str(sch.get(block).writes[0].source.dtype)
    _, inner = sch.split(loop, [None, lanes])
    sch.tensorize(inner, intrinsics.for_target(target).QUANTIZED_ADD[(lanes, dtype)])
    return True


def place_residual_add(sch: s_tir.Schedule, loop: s_tir.schedule.LoopRV) -> s_tir.schedule.SBlockRV | None:
    """A conv workload's fused residual add (None without one), computed under `loop` right after
    the requantized tile it reads; tensorize it (`tensorize_add`) once the requantize is."""
    if not has_block(sch, RESIDUAL_ADD):
        return None
    block = sch.get_sblock(RESIDUAL_ADD)
    sch.reverse_compute_at(block, loop, preserve_unit_loops=True)
    return block


class VaddQ8(ScheduleRule):
    """One fixed schedule (no decisions worth a search): the same for `tunable` True and False."""

    def space_size(self, func: tirx.PrimFunc) -> int:
        return 1

    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        if not is_kernel(func, NAME):
            return None
        sch = s_tir.Schedule(func)
        block = sch.get_sblock("add")
        *outer, channel = sch.get_loops(block)
        if len(outer) > 1:
            sch.fuse(*outer)
        if not has_block(sch, "scaled1"):  # no tail: the NEON form throughout
            tensorize_add(sch, block, channel, target)
        return sch
