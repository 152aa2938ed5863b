"""Tensor intrinsics, one module per ISA; importing a module registers its intrinsics once.

Each ISA module exposes `MAC[lanes]` (elementwise int16 MAC), `MAC_LANE[(k, lanes)]` (by-element
MAC), `REQUANTIZE[(lanes, out_dtype, rounding)]` (TFLite requantize epilogue) and
`QUANTIZED_ADD[(lanes, dtype)]` (TFLite's 8-bit ADD), `MAC_C8[k]` (the pointwise conv's
int8 c8 step) and `MAC_C2` (its c2 step: output channels in the lanes) with the names of its
registered intrinsics, so schedules ask by shape.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import tvm

_MODULES = {"aarch64": "aarch64_neon", "armv7": "armv7_neon", "generic": "generic"}


def for_isa(isa: str) -> ModuleType:
    """The intrinsic module of an ISA ("aarch64", "armv7" or "generic"), registered on first import."""
    try:
        return importlib.import_module(f"{__name__}.{_MODULES[isa]}")
    except KeyError:
        raise ValueError(f"isa: no intrinsics for {isa!r}; known: {sorted(_MODULES)}") from None


def isa_of(target: tvm.target.Target) -> str:
    """Which intrinsic module a target takes: by triple, the host and others get "generic"."""
    triple = str(target.attrs.get("mtriple", ""))
    if triple.startswith("aarch64"):
        return "aarch64"
    if triple.startswith(("armv7", "arm-", "armv7a")):
        return "armv7"
    return "generic"


def for_target(target: tvm.target.Target) -> ModuleType:
    return for_isa(isa_of(target))
