"""Default rule of the 8-bit softmax: one row at a time, two passes over it (the max, then the sum of
the table's exponentials), the per-row multiplier from the float inverse, and a third pass that
normalises. Its loads from the table are gathers, which NEON has no instruction for (the interpreter
uses TBL on the table split in 64-byte quarters): scalar, and short (one pass over C per row, no
search space)."""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from ..workloads.softmax import NAME
from .common import is_kernel


class SoftmaxQ8(ScheduleRule):
    """One fixed schedule (no decisions worth a search): the same for `tunable` True and False."""

    def space_size(self, func: tirx.PrimFunc) -> int:
        return 1

    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        if not is_kernel(func, NAME, ("peak", "exps", "total", "softmax")):
            return None
        sch = s_tir.Schedule(func)
        # The exponentials are table loads: read twice (sum, output) rather than stored.
        sch.compute_inline(sch.get_sblock("exps"))
        # The max vectorizes (16 lanes, UMAXV at the end): a reduction rfactored over the lanes.
        peak = sch.get_sblock("peak")
        (_, k) = sch.get_loops(peak)
        extent = int(sch.get(k).extent)
        if extent % 16 == 0:
            _, lanes = sch.split(k, [None, 16])
            partial = sch.rfactor(lanes, 0)
            sch.vectorize(sch.get_loops(partial)[-1])
        return sch
