"""Schedule rule of `conv_int16_lane`, the seed's dense conv schedule: a GEMM-like inner step
tensorized with the by-element MAC (SMLAL/SMLAL2 .h[k] on AArch64, VMLAL.S16 d[k] on ARMv7).

Loop nest:  n, oh, ow, oc//8, kh, kw, ic//4, [oc%8 x ic%4: one by-element MAC intrinsic]
Layouts:    weight_vec (OC//8, KH, KW, IC, 8); data_vec per output pixel (KH, KW, IC)
Placement:  data_pad inlined into data_vec, data_vec computed per output pixel (reused by every
            output-channel tile), weights widened once at the root, bias added, requantized and
            (residual blocks) added to the residual input per output pixel.
Channel counts that are not multiples of 8 (out) or 4 (in), like the first layer's 3 input
channels, are padded with zeros inside the schedule. No search space: with `tunable=True` the
same schedule is the only design space.
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from .. import intrinsics
from ..workloads.conv_int16_lane import NAME
from .common import is_kernel, pad_iterations, tensorize_update, vectorize_below
from .requantize import place_requantize

STAGES = ("data_pad", "data_vec", "weight_vec", "conv", "output")
# conv's loops: n, oh, ow, oc, kh, kw, ic
_OC, _IC = 3, 6
LANES, K = 8, 4


class ConvInt16Lane(ScheduleRule):
    """Seed template: 8 output channels in the lanes, 4 input channels per intrinsic call."""

    def apply(self, func: tirx.PrimFunc, target: Target,
              tunable: bool) -> s_tir.Schedule | list[s_tir.Schedule] | None:
        if not is_kernel(func, NAME, STAGES):
            return None
        sch = self._schedule(s_tir.Schedule(func), target)
        return [sch] if tunable else sch

    def space_size(self, func: tirx.PrimFunc) -> int:
        return 1

    def _schedule(self, sch: s_tir.Schedule, target: Target) -> s_tir.Schedule:
        mac = intrinsics.for_target(target).MAC_LANE[(K, LANES)]
        # Step 1. channels padded to the tiles; the weights' output channels innermost.
        data, weight, conv = pad_iterations(sch, {_OC: LANES, _IC: K})
        sch.transform_layout(weight, ("write", 0), lambda o, i, j, c: (o // LANES, i, j, c, o % LANES))
        # Step 2. the loop nest.
        n, oh, ow, oc, kh, kw, ic = sch.get_loops(conv)
        oco, oci = sch.split(oc, [None, LANES])
        ico, ici = sch.split(ic, [None, K])
        sch.reorder(n, oh, ow, oco, kh, kw, ico, oci, ici)
        # Step 3. stages per output pixel.
        sch.compute_inline("data_pad")
        sch.compute_at(sch.get_sblock(data), ow)
        vectorize_below(sch, data, ow)
        sch.reverse_compute_at("output", ow)
        vectorize_below(sch, "output", ow)
        place_requantize(sch, ow, target)
        # Step 4. the MAC intrinsic.
        tensorize_update(sch, conv, oci, kh, mac)
        return sch
