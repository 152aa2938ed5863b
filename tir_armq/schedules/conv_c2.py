"""Schedule rule of `conv_c2` (`tir_armq.workloads.conv_c2`): a register tile of MR pixels x NR output
channels, filled by the c2 intrinsic (LD1R, SMULL/SMLAL .8b, SADALP; VLD1.16 {d[]}, VMULL/VMLAL.S8,
VPADAL on ARMv7) over K, then requantized from the registers. A search space whose first design
space at its initial decisions is the fixed schedule (`tunable=False`).

Loop nest:  columns_outer: n, oc // NR, oh, ow // MR, k // 4, MR, NR // 8, [one 1x8x4 intrinsic]
            pixels_outer:  n, oh, ow // MR, oc // NR, k // 4, MR, NR // 8, [...]
            then the requantize (and residual add) of the MR x NR tile.
Decisions:  the loop order (one design space each): a column of NR output channels outer, its
            K x NR weights in L1 across the pixels, or the pixels outer, their K input channels in
            L1 across the columns;
            MR, a sampled perfect tile of the output row (<= 8 pixels) and NR / 8, a sampled
            perfect tile of the output channels in groups of 8 (<= 4 groups): each k-step's 2 x NR
            weight bytes are loaded once for the MR pixels, each pixel's two broadcasts serve the
            NR / 8 groups. Both loops unrolled: MR x NR / 4 int32x4 accumulators in registers.
Placement:  the accumulators start at the bias before the k loop; the epilogue per tile, from the
            registers (8-lane vectors, so that every sampled NR replays).
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..workloads.conv_c2 import NAME, OC_TILE
from .common import Decisions, is_kernel, loop_extent, parallel_fused, parallel_pixels
from .requantize import place_requantize

ORDERS = ("columns_outer", "pixels_outer")  # the first is the default
MAX_PIXEL_TILE = 8  # 8 pixels x 8 channels: 16 accumulators and 16 broadcasts, the register file
MAX_GROUPS = 4  # NR <= 32 output channels: 8 accumulators per pixel, 16 weight registers per k-step


class ConvC2(ScheduleRule):
    """Design spaces for one `conv_c2` kernel, one per loop order; with `tunable=False` the first at
    its initial decisions, fixed."""

    def apply(self, func: tirx.PrimFunc, target: Target,
              tunable: bool) -> s_tir.Schedule | list[s_tir.Schedule] | None:
        if not is_kernel(func, NAME, ("conv",)):
            return None
        sch = s_tir.Schedule(func)
        if not tunable:
            return self.design_space(sch, ORDERS[0], target, Decisions(sch, tunable=False))
        return self.design_spaces(sch, target)

    def space_size(self, func: tirx.PrimFunc) -> int:
        """How many distinct candidates the space holds (few: a tuning budget beyond it would make
        MetaSchedule's search ask for new candidates forever)."""
        width, groups = _extents(s_tir.Schedule(func))
        return len(ORDERS) * len(_divisors(width, MAX_PIXEL_TILE)) * len(_divisors(groups, MAX_GROUPS))

    def design_spaces(self, sch: s_tir.Schedule, target: Target) -> list[s_tir.Schedule]:
        """Schedules built on copies of `sch` (so MetaSchedule keeps their traces)."""
        spaces = []
        for order in ORDERS:
            copy = sch.copy()
            spaces.append(self.design_space(copy, order, target, Decisions(copy, tunable=True)))
        return spaces

    def design_space(self, sch: s_tir.Schedule, order: str, target: Target,
                     knobs: Decisions) -> s_tir.Schedule:
        """`sch` scheduled in place with loop order `order` (one of ORDERS)."""
        width, groups = _extents(sch)
        pixels, group = initial_tile(width, groups)
        n, oh, ow, oc, p, e = sch.get_loops("conv")
        tile, pixel = sch.split(ow, knobs.tile(ow, n=2, max_innermost_factor=MAX_PIXEL_TILE,
                                               decision=[width // pixels, pixels]))
        oc8, lane = sch.split(oc, [None, OC_TILE])
        column, group_loop = sch.split(oc8, knobs.tile(oc8, n=2, max_innermost_factor=MAX_GROUPS,
                                                       decision=[groups // group, group]))
        step, pair = sch.split(p, [None, 2])
        if order == "columns_outer":
            sch.reorder(n, column, oh, tile, step, pixel, group_loop, lane, pair, e)
            above = tile
            parallel_fused(sch, column, oh, target)
        else:
            sch.reorder(n, oh, tile, column, step, pixel, group_loop, lane, pair, e)
            above = column
            parallel_pixels(sch, oh, tile, target)
        # Step 1. the register tile, unrolled before the init is split off (TVM refuses after), and
        # the epilogue placed before anything is tensorized (compute-at cannot follow a tensorized
        # block).
        sch.unroll(pixel)
        sch.unroll(group_loop)
        place_requantize(sch, above, target, lanes=OC_TILE)
        # Step 2. the accumulators start at the bias above the k loop (one vector load per 4
        # channels), then the intrinsic is the update.
        outer = sch.blockize(lane)
        init = sch.decompose_reduction(outer, step)
        # Only the innermost init loop by position: a sampled tile of 1 leaves no unit loop above it
        # in every replay alike, and MetaSchedule aborts when GetLoops' output count changes.
        sch.vectorize(sch.get_loops(init)[-1])
        sch.tensorize(outer, intrinsics.for_target(target).MAC_C2)
        return sch


def initial_tile(width: int, groups: int) -> tuple[int, int]:
    """(MR, NR / 8) where the search starts and the fixed schedule stays: 2 pixels where the row
    allows, 24 channels where the channels allow (16, 8 otherwise), 32 for one pixel. Measured on
    the A72 estimate, MobileNetV2 14x14x96->576: 2 x 24 0.139 cycles/MAC, 2 x 16 0.142, 7 x 8 0.152,
    1 x 16 0.182, 2 x 8 0.198 (loads: 2 x 8 pays 4 weight loads per 2 broadcasts)."""
    pixels = 2 if width % 2 == 0 else 1
    wanted = (3, 2, 1) if pixels == 2 else (4, 3, 2, 1)
    return pixels, next(g for g in wanted if groups % g == 0)


def _extents(sch: s_tir.Schedule) -> tuple[int, int]:
    """(output row width, output channel groups of 8) of the conv block."""
    loops = sch.get_loops("conv")
    return loop_extent(sch, loops[2]), loop_extent(sch, loops[3]) // OC_TILE


def _divisors(extent: int, limit: int) -> list[int]:
    return [f for f in range(1, min(extent, limit) + 1) if extent % f == 0]
