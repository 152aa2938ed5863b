"""Compile a workload with its default schedule, for the host or for an ARM target."""

from __future__ import annotations

import tvm
from tvm import tirx

from .schedules import default_schedule
from .targets import ArmTarget


def host_target() -> tvm.target.Target:
    return tvm.target.Target("llvm")


def compile_default(func: tirx.PrimFunc, target: ArmTarget | None = None) -> tvm.runtime.Executable:
    """Schedule `func` with its default rule and compile it; `target=None` builds for the host,
    where the schedule is the same and the MAC intrinsics take their portable implementation."""
    tvm_target = target.tvm_target() if target is not None else host_target()
    sch = default_schedule(func, tvm_target)
    return tvm.compile(sch.mod, target=tvm_target)


def assembly(func: tirx.PrimFunc, target: ArmTarget) -> str:
    """The target assembly of `func` under its default schedule."""
    return compile_default(func, target).mod.inspect_source("s")
