"""Schedule rule of `conv_c8_im2col` (`tir_armq.workloads.conv_c8_im2col`): `conv_c8`'s GEMM loop
and intrinsics over the patches of a KxK conv, packed just before the GEMM reads them.

Loop nest:  rows:         n, oh, [pack the row], oc // 8, ow // PX, [k // 16], PX, [1x8x16 c8], ...
            pixels_outer: n, oh, ow // PX, [pack the tile], oc // 8, [k // 16], PX, ...
            then, per pixel, the lane sum, the bias, the requantize (and the residual add), as conv_c8.
Decisions:  the loop order (one design space each): a row's patches packed once, then each column
            of 8 output channels runs over the row (XNNPACK's GEMM with the row as M); or a tile of
            PX pixels packed, then every column over it;
            PX, a sampled perfect tile of the output row (conv_c8's knob), starting at 2 for patches
            of at most 32 bytes on AArch64, else 1.
Packing:    data_pad inlined, the pixel loops hinted for LoopPartition (only border pixels test the
            padding); a patch's whole 8-byte runs of contiguous input (`PatchLayout`) in 16- or
            8-byte vector copies, the bytes left and the padding unrolled.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.target import Target

from .. import intrinsics
from ..workloads.conv_c8 import K_STEP, K_TAIL
from ..workloads.conv_c8_im2col import NAME, RUNS_ATTR
from .common import Decisions, parallel_rows
from .conv_c8 import ConvC8

ORDERS = ("rows", "pixels_outer")  # the first is the fixed schedule's
MAX_UNROLLED_COPY = 256  # bytes of a patch's vector copies unrolled
MAX_UNROLLED_REST = 64  # bytes of a patch's byte copies unrolled (the stem's: 3, and 5 of padding)


class ConvC8Im2col(ConvC8):
    """Design spaces for one `conv_c8_im2col` kernel, one per loop order; with `tunable=False` the
    first at its initial decisions (rows, `_pixel_tile`), fixed."""

    variant = NAME
    orders = ORDERS
    stages = ("data_pad", "im2col", "lane_sum", "output")

    def _order(self, sch: s_tir.Schedule, order: str, n, oh, column, tile, pixel, oci,
               j) -> s_tir.schedule.LoopRV:
        if order == "rows":
            sch.reorder(n, oh, column, tile, pixel, oci, j)
            return tile
        sch.reorder(n, oh, tile, column, pixel, oci, j)
        return column

    def _parallelize(self, sch: s_tir.Schedule, order: str, oh, tile, column,
                     target: Target) -> s_tir.schedule.LoopRV:
        """The rows only: the patches are packed per row (or tile) under them."""
        return parallel_rows(sch, oh, target, partitioned=True)

    def pairs_apply(self, sch: s_tir.Schedule) -> bool:
        """Not measured over packed patches: the spaces stay one per order."""
        return False

    def _pixel_tile(self, sch: s_tir.Schedule, row: s_tir.schedule.LoopRV, target: Target) -> list[int]:
        """Two pixels per step where the patch is at most two 16-byte steps, the row splits in two
        and the ISA has 32 vector registers: the weights of a column (16 registers) stay loaded, and
        the per-pixel epilogue is most of the work. A72 estimate, cycles/MAC, 1 -> 2 pixels: MNv2
        stem 0.204 -> 0.193; a 3x3 conv of 16 channels, 56x56 -> 32, 0.170 -> 0.181 (its 16
        accumulators and 8 weight vectors spill). ARMv7 (16 q registers, A57 AArch32 model): the
        stem 0.334 -> 0.461."""
        width = int(sch.get(row).extent)
        patch = int(sch.get(sch.get_loops("im2col")[-1]).extent)
        wide = patch <= 2 * K_STEP and width % 2 == 0 and intrinsics.isa_of(target) != "armv7"
        pixels = 2 if wide else 1
        return [width // pixels, pixels]

    def _place_inputs(self, sch: s_tir.Schedule, order: str, row: s_tir.schedule.LoopRV,
                      tile: s_tir.schedule.LoopRV, knobs: Decisions) -> None:
        """The patches of the row (or tile) packed under it, data_pad inlined into the packing (A72
        estimate, cycles/MAC, inlined vs computed at the root: MNv2 stem 0.193 vs 0.203, 3x3 conv of
        8 channels 13x13 -> 16 0.280 vs 0.288)."""
        im2col = sch.get_sblock("im2col")
        sch.compute_at(im2col, row if order == "rows" else tile, preserve_unit_loops=True)
        # Inlined, the padding is an if_then_else on every byte; LoopPartition splits the hinted
        # pixel loops at the border, so the interior copies read the input unconditionally.
        sch.compute_inline(sch.get_sblock("data_pad"))
        pixel, k = sch.get_loops(im2col)[-2:]
        for loop in (row, pixel):
            sch.annotate(loop, "pragma_loop_partition_hint", 1)
        runs, full = (int(v) for v in sch.mod["main"].attrs[RUNS_ATTR])
        self._pack(sch, k, runs, full)

    def _pack(self, sch: s_tir.Schedule, k: s_tir.schedule.LoopRV, runs: int, full: int) -> None:
        """The copy of a patch: its first `runs` x `full` bytes (whole 8-byte groups of contiguous
        input, `PatchLayout`) in vector copies, then the bytes left (unrolled when few)."""
        patch = int(sch.get(k).extent)
        grouped = runs * full
        loops = sch.loop_partition(k, [grouped, None]) if 0 < grouped < patch else [k]
        if grouped:
            run, byte = sch.split(loops[0], [runs, full])
            vector, lane = sch.split(byte, [None, 16 if full % 16 == 0 else K_TAIL])
            sch.vectorize(lane)
            if grouped <= MAX_UNROLLED_COPY:
                sch.unroll(run)
                sch.unroll(vector)
        if grouped < patch and patch - grouped <= MAX_UNROLLED_REST:
            sch.unroll(loops[-1])
