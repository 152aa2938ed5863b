"""Schedule rule of `dwconv_int16`, the seed's depthwise schedule (TVM PR #4277), tensorized with
SMLAL/SMLAL2 (AArch64) or VMLAL.S16 (ARMv7).

Fixed (`tunable=False`), the seed template:
  loops       n, oh, ow, c//VC, m, kh, kw, [c%VC: one MAC intrinsic], VC = 8
  layouts     data_vec (N, OH, OW, C//VC, KH, KW, VC), weight_vec (C//VC, M, KH, KW, VC)
  placement   data_pad inlined into data_vec, data_vec computed per channel tile, weights widened
              once at the root, bias added per output pixel.
Design spaces (`tunable=True`), one per VC in {4, 8}: OW tiled (sampled), the loops
n, oh, ow//PX, c//VC, ow%PX, m, kh, kw, [c%VC], and the compute location of the widened data
stage sampled (materialised: the intrinsic reads it).
Channels that are not a multiple of VC are padded with zeros inside the schedule.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..workloads.dwconv_int16 import NAME
from .common import ROOT, is_kernel, pad_iterations, tensorize_update, vectorize_below
from .requantize import place_requantize

STAGES = ("data_pad", "data_vec", "weight_vec", "conv", "output")
# conv's loops: n, oh, ow, c, m, kh, kw
_C = 3
SEED_LANES = 8  # SMLAL + SMLAL2 per tile
SPACE_LANES = (4, 8)


class DwconvInt16(ScheduleRule):
    """The seed template, or its search space (see the module docstring)."""

    def apply(self, func: tirx.PrimFunc, target: Target,
              tunable: bool) -> s_tir.Schedule | list[s_tir.Schedule] | None:
        if not is_kernel(func, NAME, STAGES):
            return None
        sch = s_tir.Schedule(func)
        if not tunable:
            return self._seed(sch, target)
        return self.design_spaces(sch, target)

    def design_spaces(self, sch: s_tir.Schedule, target: Target) -> list[s_tir.Schedule]:
        """Schedules built on copies of `sch` (so MetaSchedule keeps their traces)."""
        return [self._space(sch.copy(), lanes, target) for lanes in SPACE_LANES]

    # ---------------------------------------------------------------- the seed template
    def _seed(self, sch: s_tir.Schedule, target: Target) -> s_tir.Schedule:
        mac = intrinsics.for_target(target).MAC[SEED_LANES]
        # Step 1. channels padded to the tile, the seed's layouts.
        data, weight, conv = pad_iterations(sch, {_C: SEED_LANES})
        _layouts(sch, data, weight, conv, SEED_LANES)
        # Step 2. the loop nest: channel tiles inside the pixel, the taps inside the tile.
        n, oh, ow, c, m, kh, kw = sch.get_loops(conv)
        co, ci = sch.split(c, [None, SEED_LANES])
        sch.reorder(n, oh, ow, co, m, kh, kw, ci)
        # Step 3. stages: the widened window per channel tile, bias and epilogue per pixel.
        sch.compute_inline("data_pad")
        sch.compute_at(sch.get_sblock(data), co)
        # The stage iterates (kh, kw, c): its innermost loop is the VC channels of the tile.
        vectorize_below(sch, data, co)
        sch.reverse_compute_at("output", ow)
        vectorize_below(sch, "output", ow)
        place_requantize(sch, ow, target)
        # Step 4. the MAC intrinsic.
        tensorize_update(sch, conv, ci, kh, mac)
        return sch

    # ---------------------------------------------------------------- the search space
    def _space(self, sch: s_tir.Schedule, lanes: int, target: Target) -> s_tir.Schedule:
        mac = intrinsics.for_target(target).MAC[lanes]
        data, weight, conv = pad_iterations(sch, {_C: lanes})
        _layouts(sch, data, weight, conv, lanes)
        n, oh, ow, c, m, kh, kw = sch.get_loops(conv)
        co, ci = sch.split(c, [None, lanes])
        owo, owi = sch.split(ow, sch.sample_perfect_tile(ow, n=2, max_innermost_factor=4))
        sch.reorder(n, oh, owo, co, owi, m, kh, kw, ci)
        sch.compute_inline("data_pad")
        block = sch.get_sblock(data)
        sch.compute_at(block, sch.sample_compute_location(block, decision=ROOT))
        sch.reverse_compute_at("output", co)
        # Per pixel tile, over all channels: a padded channel tile (C = 100) is not a whole
        # number of requantize vectors, the full channel row is.
        place_requantize(sch, owo, target)
        tensorize_update(sch, conv, ci, kh, mac)
        return sch


def _layouts(sch: s_tir.Schedule, data: str, weight: str, conv: str, lanes: int) -> None:
    """The seed's layouts: channels split into tiles of `lanes`, innermost."""
    sch.transform_layout(data, ("write", 0), lambda n, h, w, i, j, c: (n, h, w, c // lanes, i, j, c % lanes))
    sch.transform_layout(weight, ("write", 0), lambda c, m, i, j: (c // lanes, m, i, j, c % lanes))
    sch.transform_layout(conv, ("write", 0), lambda n, h, w, c, m: (n, h, w, c // lanes, m, c % lanes))
