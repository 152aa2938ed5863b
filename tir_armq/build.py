"""Compile a kernel with its fixed schedule, for the host or for an ARM target."""

from __future__ import annotations

import tvm
from tvm import tirx

from .kernels import fixed_schedule
from .targets import ArmTarget


def host_target() -> tvm.target.Target:
    return tvm.target.Target("llvm")


def compile_default(func: tirx.PrimFunc, target: ArmTarget | None = None) -> tvm.runtime.Executable:
    """Schedule `func` (a kernel variant's PrimFunc) with its rule's fixed schedule and compile it;
    `target=None` builds for the host, where the schedule is the same and the MAC intrinsics take
    their portable implementation."""
    tvm_target = target.tvm_target() if target is not None else host_target()
    sch = fixed_schedule(func, tvm_target)
    return tvm.compile(sch.mod, target=tvm_target)


def assembly(func: tirx.PrimFunc, target: ArmTarget) -> str:
    """The target assembly of `func` under its fixed schedule."""
    return compile_default(func, target).mod.inspect_source("s")
