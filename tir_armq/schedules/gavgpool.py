"""Default rule of the spatial mean: channels innermost and vectorized in the sum, requantize
tensorized (it is one pass over H*W*C inputs: no search space); on several threads the channel
tiles of the sum in parallel."""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from ..workloads.mean import NAME
from .common import is_kernel, loop_extent, parallel_rows
from .requantize import requantize_lanes, tensorize_requantize


class GavgpoolQ8(ScheduleRule):
    """One fixed schedule (no decisions worth a search): the same for `tunable` True and False."""

    def space_size(self, func: tirx.PrimFunc) -> int:
        return 1

    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        if not is_kernel(func, NAME):
            return None
        sch = s_tir.Schedule(func)
        total = sch.get_sblock("sum")
        n, c, y, x = sch.get_loops(total)
        lanes = requantize_lanes(loop_extent(sch, c))
        if lanes is not None:
            co, ci = sch.split(c, [None, lanes])
            sch.reorder(n, co, y, x, ci)
            parallel_rows(sch, co, target)
            sch.vectorize(ci)
            init = sch.decompose_reduction(total, y)
            sch.vectorize(sch.get_loops(init)[-1])
        out_dtype = str(sch.get(sch.get_sblock("requantize")).writes[0].source.dtype)
        tensorize_requantize(sch, sch.get_sblock("requantize"), target, out_dtype)
        return sch
