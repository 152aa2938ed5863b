"""Schedule rule of `conv_c8` (`tir_armq.workloads.conv_c8`): XNNPACK's GEMM loop with our c8 MAC
intrinsic (SMULL/SMLAL on 8-bit lanes + SADALP; VMULL/VMLAL.S8 + VPADAL on ARMv7), as a search space
whose first design space at its initial decisions is the fixed schedule (`tunable=False`).

Loop nest:  columns_outer: n, oc // 8, pixels // PX, [k // 16], PX, [one 1x8x16 intrinsic], ...
            pixels_outer:  n, pixels // PX, oc // 8, [k // 16], PX, ...
            then the 1x8x8 intrinsic for K % 16 == 8, the 8x4 lane sum, the epilogue, per pixel.
Decisions:  the loop order (one design space each): a column of 8 output channels outer and the
            pixels inner as XNNPACK's GEMM (the column's weights stay in L1 across the pixels), or
            the pixels outer (a pixel's K input channels stay in L1 across the columns);
            PX, a sampled perfect tile of the output plane (oh * ow fused): PX pixels' accumulators
            fill together, each 16-channel step of weights loaded once for all of them (XNNPACK's
            2 x 8 step at PX = 2); the tile loop is unrolled;
            pixels one or two at a time (two design spaces more where `pairs_apply`): in pairs the
            16-wide step is the 2x8x16 intrinsic, a weight row used for both pixels as loaded (two
            1x8x16 steps in a row keep 16 weight vectors live: LLVM spills), and LLVM interleaves
            the two pixels' epilogues (A72 estimate, 14x14x96 -> 576: 0.186 -> 0.153 cycles/MAC).
Placement:  the int32x4 accumulators of a tile start at zero and fill over K; then, per pixel, the
            lane sum (ADDP), the bias, the requantize (and the residual add) in registers.
Anchor:     the lane sum; the accumulator blocks are its producers, computed under the loop above
            its pixel loop (reverse-computing a block whose producers are not under the loop is
            refused).
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..intrinsics.mac_c8 import PAIR
from ..workloads.conv_c8 import NAME, OC_TILE
from .common import Decisions, has_block, is_kernel, parallel_fused, parallel_pixels, vectorize_below
from .requantize import place_requantize

ORDERS = ("columns_outer", "pixels_outer")  # the first is the default
MAX_PIXEL_TILE = 4  # 4 pixels x 8 int32x4 accumulators already take 32 registers


class ConvC8(ScheduleRule):
    """Design spaces for one `conv_c8` kernel, one per loop order; with `tunable=False` the first
    at its initial decisions (columns outer, one pixel per step), fixed."""

    variant = NAME
    orders = ORDERS  # the first is the fixed schedule's
    stages = ("lane_sum", "output")

    def apply(self, func: tirx.PrimFunc, target: Target,
              tunable: bool) -> s_tir.Schedule | list[s_tir.Schedule] | None:
        if not is_kernel(func, self.variant, self.stages):
            return None
        sch = s_tir.Schedule(func)
        if not tunable:
            return self.design_space(sch, self.orders[0], target, Decisions(sch, tunable=False))
        return self.design_spaces(sch, target)

    def space_size(self, func: tirx.PrimFunc) -> int:
        """How many distinct candidates the space holds (few: a tuning budget beyond it would make
        MetaSchedule's search ask for new candidates forever)."""
        sch = s_tir.Schedule(func)
        width = int(sch.get(sch.get_loops("lane_sum")[2]).extent)
        tiles = sum(width % f == 0 for f in range(1, MAX_PIXEL_TILE + 1))
        if self.pairs_apply(sch):
            tiles += sum(width // PAIR % f == 0 for f in range(1, MAX_PIXEL_TILE // PAIR + 1))
        return len(self.orders) * tiles

    def design_spaces(self, sch: s_tir.Schedule, target: Target) -> list[s_tir.Schedule]:
        """Schedules built on copies of `sch` (so MetaSchedule keeps their traces)."""
        spaces = []
        for pairs in (False, True) if self.pairs_apply(sch) else (False,):
            for order in self.orders:
                copy = sch.copy()
                spaces.append(self.design_space(copy, order, target, Decisions(copy, tunable=True), pairs))
        return spaces

    def pairs_apply(self, sch: s_tir.Schedule) -> bool:
        """Whether the two-pixel step fits: 16-wide steps, an even output row, and two neighbour
        pixels two input rows K apart (stride 1 along W)."""
        if not has_block(sch, "conv"):
            return False
        width = int(sch.get(sch.get_loops("lane_sum")[2]).extent)
        source = next(r.source for r in sch.get(sch.get_sblock("conv")).reads if r.source.dtype == "int8")
        return width % PAIR == 0 and int(source.shape[2]) == width

    def design_space(self, sch: s_tir.Schedule, order: str, target: Target,
                     knobs: Decisions, pairs: bool = False) -> s_tir.Schedule:
        """`sch` scheduled in place with loop order `order` (one of `orders`); `pairs`: the 16-wide
        steps two pixels at a time (`pairs_apply`). Subclasses hook in through `_pixel_tile`,
        `_order` and `_place_inputs` (conv_c8_im2col packs its patches)."""
        mac = intrinsics.for_target(target).MAC_C8
        accumulators = [name for name in ("conv", "conv_tail") if has_block(sch, name)]
        n, oh, ow, oc, j = sch.get_loops("lane_sum")
        column, oci = sch.split(oc, [None, OC_TILE])
        if pairs:  # pixels in pairs: PX = 2 x a sampled tile of the pairs
            ow, two = sch.split(ow, [None, PAIR])
            tile, pairs_ = sch.split(ow, knobs.tile(ow, n=2, max_innermost_factor=MAX_PIXEL_TILE // PAIR,
                                                    decision=[int(sch.get(ow).extent), 1]))
            pixel = sch.fuse(pairs_, two)
        else:
            tile, pixel = sch.split(ow, knobs.tile(ow, n=2, max_innermost_factor=MAX_PIXEL_TILE,
                                                   decision=self._pixel_tile(sch, ow, target)))
        above = self._order(sch, order, n, oh, column, tile, pixel, oci, j)
        oh = self._parallelize(sch, order, oh, tile, column, target)
        # Step 1. every block placed before any is tensorized (compute-at cannot follow a tensorized
        # block); unit loops kept, so that the trace replays for every sampled tile.
        for name in accumulators:
            sch.compute_at(sch.get_sblock(name), above, preserve_unit_loops=True)
            if name == "conv":  # k // 16 outermost: a step's weights serve all the tile's pixels
                px, o, lane, kb, h, e = sch.get_loops(name)[-6:]
                sch.reorder(kb, px, o, lane, h, e)
                if pairs:
                    px = sch.split(px, [None, PAIR])[0]
            else:
                px = sch.get_loops(name)[-5]
            sch.unroll(px)
        self._place_inputs(sch, order, oh, tile, knobs)
        sch.reverse_compute_at(sch.get_sblock("output"), pixel, preserve_unit_loops=True)
        vectorize_below(sch, "output", pixel)
        place_requantize(sch, pixel, target, lanes=OC_TILE)
        # Step 2. the intrinsics.
        for name in accumulators:
            if name == "conv" and pairs:
                self._tensorize(sch, name, mac[("pair", 16)], steps=True, depth=5)
            else:
                self._tensorize(sch, name, mac[16 if name == "conv" else 8], steps=name == "conv")
        self._tensorize(sch, "lane_sum", mac[("lane_sum", len(accumulators))])
        return sch

    def _pixel_tile(self, sch: s_tir.Schedule, row: s_tir.schedule.LoopRV, target: Target) -> list[int]:
        """The initial (and fixed) tile of the output row: one pixel per step."""
        return [int(sch.get(row).extent), 1]

    def _order(self, sch: s_tir.Schedule, order: str, n, oh, column, tile, pixel, oci,
               j) -> s_tir.schedule.LoopRV:
        """Reorder the output's loops as `order` says; returns the loop the accumulators go under."""
        if order == "columns_outer":
            sch.reorder(n, column, oh, tile, pixel, oci, j)
            return tile
        sch.reorder(n, oh, tile, column, pixel, oci, j)
        return column

    def _parallelize(self, sch: s_tir.Schedule, order: str, oh, tile, column,
                     target: Target) -> s_tir.schedule.LoopRV:
        """On several threads: the column tiles with the rows below them, or the rows (with their
        pixel tiles where a plane has few rows) in parallel. Returns the loop that now stands for
        the rows."""
        if order == "columns_outer":
            return parallel_fused(sch, column, oh, target)
        return parallel_pixels(sch, oh, tile, target)

    def _place_inputs(self, sch: s_tir.Schedule, order: str, row: s_tir.schedule.LoopRV,
                      tile: s_tir.schedule.LoopRV, knobs: Decisions) -> None:
        """Stages before the accumulators (none here: the GEMM reads the layer's input)."""

    def _tensorize(self, sch: s_tir.Schedule, block: str, intrin: str, steps: bool = False,
                   depth: int | None = None) -> None:
        """Zero the tile's accumulators (one vector store each), then the intrinsic as the update.
        `steps`: the reduction loop (k // 16) runs around the tile, and the init goes before it.
        `depth`: the intrinsic's loops, default oc % 8 of (oc % 8, j[, h], e) / (oc % 8, j)."""
        depth = depth or {"conv": 4, "conv_tail": 3, "lane_sum": 2}[block]
        if steps:
            outer = sch.blockize(sch.get_loops(block)[-depth])
            sch.decompose_reduction(outer, sch.get_loops(outer)[-2])  # above the tile's pixel loop
        else:  # blockize would take the init along: split it off first
            sch.decompose_reduction(sch.get_sblock(block), sch.get_loops(block)[-depth])
            outer = sch.blockize(sch.get_loops(f"{block}_update")[-depth])
        sch.vectorize(sch.get_loops(f"{block}_init")[-1])
        sch.tensorize(outer, intrin)
