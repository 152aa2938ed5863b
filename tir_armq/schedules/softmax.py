"""Default rule of the 8-bit softmax: one row at a time, two passes over it (the max, then the table's
exponentials and their sum), the per-row multiplier from the float inverse, and a third pass that
normalises. Its loads from the table are gathers, which NEON has no instruction for (the interpreter
uses TBL on the table split in 64-byte quarters): scalar, and short (no search space)."""

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
        # The exponentials are table loads (gathers): each once, kept in a row buffer the sum and the
        # output read (inlined into both: 14.7 k -> 11.8 k est. cycles, MNv2's 1000 classes).
        # The max vectorizes (16 lanes, UMAXV at the end): a reduction rfactored over the lanes (the
        # sum rfactored over 4 lanes measured no faster).
        _, k = sch.get_loops(sch.get_sblock("peak"))
        if int(sch.get(k).extent) % 16 == 0:
            _, lanes = sch.split(k, [None, 16])
            partial = sch.rfactor(lanes, 0)
            sch.vectorize(sch.get_loops(partial)[-1])
        return sch
