"""Default rule of the quantized ADD: one flat loop (the workload's arithmetic is elementwise and
indexes its NEON blocks by flat position; its int64 form is left to LLVM, unvectorized for now)."""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir.dlight.base import ScheduleRule
from tvm.target import Target

from ..workloads.add import OP_NAME
from .common import is_op


class AddDefault(ScheduleRule):
    def apply(self, func: tirx.PrimFunc, target: Target, tunable: bool) -> s_tir.Schedule | None:
        if not is_op(func, OP_NAME):
            return None
        sch = s_tir.Schedule(func)
        block = sch.get_sblock("add")
        sch.fuse(*sch.get_loops(block))
        return sch
