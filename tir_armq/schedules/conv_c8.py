"""Default rule of the pointwise conv's c8 path (`tir_armq.workloads.conv_c8`): XNNPACK's GEMM loop
with our c8 MAC intrinsic (SMULL/SMLAL on 8-bit lanes + SADALP; VMULL/VMLAL.S8 + VPADAL on ARMv7).

Loop nest:  n, oc // 8, oh, ow, [k // 16: one 1x8x16 intrinsic], [the 1x8x8 one for K % 16 == 8],
            [the 8x4 lane sum]
Placement:  a column of 8 output channels outer and the pixels inner, as XNNPACK's GEMM does, so
            a column's weights stay in cache across the pixels; the int32x4 accumulators of one
            pixel start at zero, fill over K, are lane-summed (ADDP), biased, requantized (and added
            to the residual) right there, in registers.
Anchor:     the lane sum; the accumulator blocks are its producers, computed under its pixel loop
            (reverse-computing a block whose producers are not under the loop is refused).
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..workloads.conv import OP_NAME
from ..workloads.conv_c8 import OC_TILE, PATH
from .common import has_block, is_op, vectorize_below
from .requantize_default import place_requantize


def is_c8(func: tirx.PrimFunc) -> bool:
    return is_op(func, OP_NAME) and func.attrs.get("tir_armq.path") == PATH


class ConvC8Default(ScheduleRule):
    """The c8 path's one schedule (its tunable space is still to come: pixel tiles, loop order)."""

    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        if not is_c8(func):
            return None
        mac = intrinsics.for_target(target).MAC_C8
        sch = s_tir.Schedule(func)
        accumulators = [name for name in ("conv", "conv_tail") if has_block(sch, name)]
        n, oh, ow, oc, j = sch.get_loops("lane_sum")
        column, oci = sch.split(oc, [None, OC_TILE])
        sch.reorder(n, column, oh, ow, oci, j)
        pixel = ow
        steps = False
        for name in accumulators:
            sch.compute_at(sch.get_sblock(name), pixel)
            below = sch.get_loops(name)[len(sch.get_loops("lane_sum")) - 2:]  # under the pixel loop
            if name == "conv" and len(below) == 5:  # k // 16 (> 1 step) stays a loop around the intrinsic
                o, lane, kb, h, e = below
                sch.reorder(kb, o, lane, h, e)
                steps = True
        # Every block placed before any is tensorized: compute-at cannot follow a tensorized block.
        sch.reverse_compute_at(sch.get_sblock("output"), pixel)
        vectorize_below(sch, "output", pixel)
        place_requantize(sch, pixel, target, lanes=OC_TILE)
        for name in accumulators:
            self._tensorize(sch, name, mac[16 if name == "conv" else 8], steps and name == "conv")
        self._tensorize(sch, "lane_sum", mac[("lane_sum", len(accumulators))])
        return sch

    def _tensorize(self, sch: s_tir.Schedule, block: str, intrin: str, steps: bool = False) -> None:
        """Zero the tile's accumulators (one vector store each), then the intrinsic as the update.
        `steps`: a reduction loop (k // 16) runs around the tile, and the init goes before it."""
        depth = {"conv": 4, "conv_tail": 3, "lane_sum": 2}[block]  # oc % 8 of (oc % 8, j[, h], e) / (oc % 8, j)
        if steps:
            outer = sch.blockize(sch.get_loops(block)[-depth])
            sch.decompose_reduction(outer, sch.get_loops(outer)[-1])
        else:  # blockize would take the init along: split it off first
            sch.decompose_reduction(sch.get_sblock(block), sch.get_loops(block)[-depth])
            outer = sch.blockize(sch.get_loops(f"{block}_update")[-depth])
        sch.vectorize(sch.get_loops(f"{block}_init")[-1])
        sch.tensorize(outer, intrin)
