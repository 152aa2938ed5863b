"""The seed's depthwise schedule (TVM PR #4277) as a dlight-style rule, tensorized with SMLAL/VMLAL.

Loop nest:  n, oh, ow, c//VC, m, kh, kw, [c%VC: one MAC intrinsic]
Layouts:    data_vec (N, OH, OW, C//VC, KH, KW, VC), weight_vec (C//VC, M, KH, KW, VC)
Placement:  data_pad inlined into data_vec, data_vec computed per channel tile, weights widened
            once at the root, bias added per output pixel.
No tunable decisions here: this is the reference point the search space (a later rule) starts from.
The int8 multiply path (no seed template) defaults to the space's first design space as sampled.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..workloads.depthwise import OP_NAME
from .common import is_workload, pad_iterations, tensorize_update, vectorize_below
from .requantize_default import place_requantize

# conv's loops: n, oh, ow, c, m, kh, kw
_C = 3


class DepthwiseDefault(ScheduleRule):
    """Seed template with a channel tile of `lanes` (4 or 8; 8 gives SMLAL + SMLAL2)."""

    def __init__(self, lanes: int = 8) -> None:
        if lanes not in (4, 8):
            raise ValueError(f"lanes: the default depthwise schedule takes 4 or 8, got {lanes}")
        self.lanes = lanes

    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        if not is_workload(func, OP_NAME):
            return None
        if str(func.attrs.get("tir_armq.path", "int16")) == "int8":
            # The int8 path has no seed template: its default is the search space's first design
            # space at its initial decisions (16 lanes x 4 pixels, channels outer).
            from .depthwise_space import DepthwiseSpace

            return DepthwiseSpace().design_spaces(s_tir.Schedule(func), target)[0]
        mac = intrinsics.for_target(target).MAC[self.lanes]
        sch = s_tir.Schedule(func)
        data, weight, conv = pad_iterations(sch, {_C: self.lanes})
        self._seed_layouts(sch, data, weight, conv)
        ow, co, kh, ci = self._loop_nest(sch, conv)
        self._place_stages(sch, data, co, ow)
        place_requantize(sch, ow, target)
        tensorize_update(sch, conv, ci, kh, mac)
        return sch

    def _seed_layouts(self, sch: s_tir.Schedule, data: str, weight: str, conv: str) -> None:
        vc = self.lanes
        sch.transform_layout(data, ("write", 0), lambda n, h, w, i, j, c: (n, h, w, c // vc, i, j, c % vc))
        sch.transform_layout(weight, ("write", 0), lambda c, m, i, j: (c // vc, m, i, j, c % vc))
        sch.transform_layout(conv, ("write", 0), lambda n, h, w, c, m: (n, h, w, c // vc, m, c % vc))

    def _loop_nest(self, sch: s_tir.Schedule, conv: str):
        n, oh, ow, c, m, kh, kw = sch.get_loops(conv)
        co, ci = sch.split(c, [None, self.lanes])
        sch.reorder(n, oh, ow, co, m, kh, kw, ci)
        return ow, co, kh, ci

    def _place_stages(self, sch: s_tir.Schedule, data: str, co, ow) -> None:
        sch.compute_inline("data_pad")
        sch.compute_at(sch.get_sblock(data), co)
        # The stage iterates (kh, kw, c): its innermost loop is the VC channels of the tile.
        vectorize_below(sch, data, co)
        sch.reverse_compute_at("output", ow)
        vectorize_below(sch, "output", ow)
