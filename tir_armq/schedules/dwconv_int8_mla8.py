"""Schedule rule of `dwconv_int8_mla8` (XNNPACK's mla8 arithmetic, register-blocked): the depthwise
search space, and with `tunable=False` its first design space at its initial decisions.

  loops   channels_outer:     n, oh, c//VC, ow//PX, m, pair, ow%PX, c%VC
          channels_outermost: n, c//VC, oh, ow//PX, m, pair, ow%PX, c%VC
          fused_pixels:       n, c//VC, (oh*ow)//PX, m, pair, (oh*ow)%PX, c%VC   (tail by predicate)
          - channels_outermost loads a channel tile's weights once per plane instead of once per
            row (LLVM peels each row's first pixel tile to load them): what small planes need;
          - VC: sampled perfect tile of C (<= 16 lanes); PX: sampled perfect tile of OW (<= 8), or a
            sampled width in PIXEL_TILES over the fused plane; one design space per order;
          - pairs and pixels unrolled, lanes vectorized: the PX x VC accumulators live in
            registers, the tile's weights are loaded once per PX pixels, and LLVM merges the loads
            that neighbouring pixels share (stride 1);
  stages  data_pad: sampled compute location (inline, root, or any loop of conv); the pixel
            loops carry LoopPartition's hint, so inlined padding costs only the border tiles;
          the requantize epilogue (if any) per pixel tile (channels_outer[most]: from the registers), or
          per output row (channels_outer) or plane (fused_pixels) over all channels, reading the
          int32 row back; one design space per (order, placement).
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from ..workloads.dwconv_int8_mla8 import NAME
from .common import (ROOT, ROWS_PER_THREAD, Decisions, balance, has_block, is_kernel, parallel_fused,
                     parallel_rows, row_runs, threads_of)
from .requantize import place_requantize

# (loop order, where the requantize epilogue goes): per output row / plane, reading the int32 row
# back, or per pixel tile, right after its accumulators (in registers, XNNPACK's order). The first is
# the fixed schedule (tunable=False): untuned, the row placement measured better on most layers
# (MobileNet V1 0.25/96: 1.98 M cycles, 2.08 M with the tile one), tuning picks per layer.
# channels_outermost (appended last: design space indices of stored traces keep their meaning)
# measured on MNv2 14x14x576 at its start point 0.297 cycles/MAC against 0.307 for the best tuned
# channels_outer record; 7x7x960 0.322 against 0.334.
INT8_SPACES = (("channels_outer", "row"), ("channels_outer", "tile"), ("fused_pixels", "row"),
               ("channels_outermost", "tile"))
REQUANTIZE_LANES = 8  # the per-tile epilogue's vector width (any sampled channel tile it divides replays)
PIXEL_TILES = [1, 2, 3, 4, 6, 8]  # pixels per iteration of the fused-plane order (decision 1: 2)


class DwconvInt8Mla8(ScheduleRule):
    """Design spaces for one `dwconv_int8_mla8` kernel, one per (loop order, epilogue placement);
    with `tunable=False` the first at its initial decisions, fixed."""

    def apply(self, func: tirx.PrimFunc, target: Target,
              tunable: bool) -> s_tir.Schedule | list[s_tir.Schedule] | None:
        if not is_kernel(func, NAME, ("data_pad", "conv")):
            return None
        sch = s_tir.Schedule(func)
        if not tunable:
            order, epilogue = INT8_SPACES[0]
            threads = threads_of(target)
            if threads > 1 and _rows(sch) < ROWS_PER_THREAD * threads and _requantizes(sch) \
                    and _channels(sch) % REQUANTIZE_LANES == 0:
                order, epilogue = "channels_outermost", "tile"  # a small plane: channel tiles in parallel
            sch = self._schedule(sch, order, epilogue, target, Decisions(sch, tunable=False))
            self.parallel_stages(sch, target)
            return sch
        return self.design_spaces(sch, target)

    def parallel_stages(self, sch: s_tir.Schedule, target: Target) -> None:
        """On several threads, the padded input's rows in parallel where it is computed at the root
        (inlined, or under the conv's loops, the conv's parallel loop covers it). Called on a
        schedule whose decisions are final: where the stage goes is one of them."""
        if threads_of(target) <= 1 or not has_block(sch, "data_pad"):
            return
        pad, conv = sch.get_loops("data_pad"), sch.get_loops("conv_update")
        if pad and not sch.get(pad[0]).same_as(sch.get(conv[0])):  # its own loop nest, at the root
            parallel_rows(sch, pad[1], target)

    def design_spaces(self, sch: s_tir.Schedule, target: Target) -> list[s_tir.Schedule]:
        """Schedules built on copies of `sch` (so MetaSchedule keeps their traces)."""
        # The per-tile epilogue needs channel tiles of whole 8-lane vectors.
        tile_ok = _requantizes(sch) and _channels(sch) % REQUANTIZE_LANES == 0
        spaces = [space for space in INT8_SPACES if space[1] == "row" or tile_ok]
        schedules = []
        for order, epilogue in spaces:
            copy = sch.copy()
            schedules.append(self._schedule(copy, order, epilogue, target, Decisions(copy, tunable=True)))
        return schedules

    def _schedule(self, sch: s_tir.Schedule, order: str, epilogue: str, target: Target,
              knobs: Decisions) -> s_tir.Schedule:
        conv = sch.get_sblock("conv")
        n, oh, ow, c, m, pair = sch.get_loops(conv)
        channel_count, row_count = _channels(sch), _rows(sch)  # before the splits and reorders below
        # The tiles start at measured good points (below; the row epilogue's at 16 lanes x 4 pixels,
        # PERF_NOTES), so the search's first candidates are good ones and mutation explores around them.
        multiple = REQUANTIZE_LANES if epilogue == "tile" else 1
        # The per-tile epilogue keeps the tile's weights, requantize constants (multiplier and shift
        # per lane) and bias in registers across the pixel loop: at 16 lanes that is 9 + 8 + 4
        # vectors, too many beside a pixel's accumulators, and LLVM rotates 10 of them through MOVs
        # every tile. At 8 lanes (9 + 4 + 2) two pixels fit. channels_outermost starts at 8 lanes x 2
        # pixels (A72 estimate, inlined pad, cycles/MAC, 16 x 1 -> 8 x 2 or 8 x 1 where OW is odd:
        # MNv2 56x56x144 s2 0.275 (record) -> 0.246, 28x28x192 s2 0.332 -> 0.260, 7x7x960 0.273 ->
        # 0.256; 14x14x576 s1 is the exception, 0.253 -> 0.260, its stored record stays 16 x 1).
        # channels_outer's starts at 4 pixels, and at 8 lanes where OW allows only one (OW = 7:
        # 14x14x576 s2 0.296 at 16 lanes, 0.275 at 8).
        pixels = _tile_decision(sch, ow, 4 if order == "channels_outer" else 2)
        lanes = 8 if epilogue == "tile" and (order == "channels_outermost" or pixels[1] == 1) else 16
        channels = _tile_decision(sch, c, lanes, multiple)
        co, ci = sch.split(c, knobs.tile(c, n=2, max_innermost_factor=16, decision=channels))
        threads = threads_of(target)
        if order in ("channels_outer", "channels_outermost"):
            owo, owi = sch.split(ow, knobs.tile(ow, n=2, max_innermost_factor=8, decision=pixels))
            if order == "channels_outer":
                sch.reorder(n, oh, co, owo, m, pair, owi, ci)
                parallel = (oh, None)
                pixel_loops = (oh, owo)
            else:
                sch.reorder(n, co, oh, owo, m, pair, owi, ci)
                # The channel tiles where they split over the threads as evenly as the rows (counted at
                # the widest sampled tile, 16 lanes), else the rows of each tile (a launch per tile).
                # Not the two fused: fused rows no longer partition at the border (A72 estimate, MNv2
                # 14x14x384: +45% instructions).
                tiles = -(-channel_count // 16)
                parallel = (co if balance(tiles, threads) >= balance(row_count, threads) else oh, None)
                pixel_loops = (oh, owo)
            rows = oh
            tile = owo
        else:
            # Pixels of the whole output plane in one axis, tiled by a sampled width with a tail:
            # small planes (7x7, 14x14) get 2-4 pixels per iteration whatever their divisors.
            pixels = sch.fuse(oh, ow)
            width = knobs.categorical(PIXEL_TILES, decision=1)
            po, owi = sch.split(pixels, [None, width])
            sch.reorder(n, co, po, m, pair, owi, ci)
            parallel = (co, po)
            rows = n
            pixel_loops = (po,) if threads == 1 else ()
        # Inlined, the padded input is an if_then_else on every tap's load; only the border tiles
        # need it. LoopPartition splits the hinted loops at the bounds the conditions imply, so the
        # interior tiles read the input unconditionally (MNv2 14x14x576, channels_outermost, data_pad
        # inlined: 0.521 cycles/MAC unpartitioned, 0.253 partitioned; materialised: 0.282).
        for loop in pixel_loops:
            sch.annotate(loop, "pragma_loop_partition_hint", 1)
        # Step 1. the padded input: inline, whole, or per row/tile, as sampled. Compute locations
        # start at the root (always valid, so building a design space never fails); MetaSchedule's
        # MutateComputeLocation moves them, and drops the replays a location breaks.
        knobs.compute_at(sch.get_sblock("data_pad"), ROOT)
        # Then the threads: after the sampled location, so that its candidates (the conv's loops) are
        # the same on every thread count and a one-thread record's decision means the same loop on
        # four (`kernels.retarget`); a location between the two fused loops does not replay.
        outer, inner = parallel
        split = row_runs(sch, rows, target) if inner is None and outer is rows else None
        if split is not None:
            runs, rows = split
            # channels_outermost: each thread's run of rows above the channel tiles, one launch
            # instead of one per tile (MNv2 56x56x144 on 4 threads: 9 launches, 299 k -> 294 k est.
            # cycles alone). A padded input sampled under the tiles or rows does not replay so.
            if order == "channels_outermost":
                sch.reorder(runs, co)
        elif inner is None:
            parallel_rows(sch, outer, target)
        else:
            parallel_fused(sch, outer, inner, target)
        # Step 2. the register tile: vectorize and unroll before decomposing (TVM refuses after).
        # conv accumulates into the output (its init is the folded bias): with the taps unrolled
        # the tile is straight-line code and LLVM keeps it in registers.
        sch.unroll(pair)
        sch.unroll(owi)
        sch.vectorize(ci)
        init = sch.decompose_reduction(conv, pair)
        owi_init, ci_init = sch.get_loops(init)[-2:]
        sch.unroll(owi_init)
        sch.vectorize(ci_init)
        # The epilogue per pixel tile: the PX x VC accumulators go from registers to int8, no int32
        # row in memory; 8-lane vectors (measured: 4 lanes narrow into 4 bytes through 16-bit lanes,
        # 16 spill), so that every sampled VC that is a multiple of 8 replays.
        # Or under the innermost loop that is not a sampled tile (a row, the plane for the fused
        # order): its channel loop is then all the channels, the widest vector the layer allows.
        if epilogue == "tile":
            place_requantize(sch, tile, target, lanes=REQUANTIZE_LANES)
        else:
            place_requantize(sch, rows, target, pixels_inner=order == "channels_outer")
        return sch


def _requantizes(sch: s_tir.Schedule) -> bool:
    return "tir_armq.rounding" in (sch.mod["main"].attrs or {})


def _tile_decision(sch: s_tir.Schedule, loop, want: int, multiple: int = 1) -> list[int]:
    """A perfect two-level tile of `loop` with the largest inner factor <= `want` that is a
    multiple of `multiple` (which must divide the extent)."""
    extent = int(sch.get(loop).extent)
    inner = max(f for f in range(multiple, min(want, extent) + 1, multiple) if extent % f == 0)
    return [extent // inner, inner]


def _rows(sch: s_tir.Schedule) -> int:
    return int(sch.get(sch.get_loops(sch.get_sblock("conv"))[1]).extent)


def _channels(sch: s_tir.Schedule) -> int:
    return int(sch.get(sch.get_loops(sch.get_sblock("conv"))[3]).extent)
