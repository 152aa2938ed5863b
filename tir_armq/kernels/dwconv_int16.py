"""`dwconv_int16`: the seed's depthwise conv (TVM PR #4277), any 8-bit scheme."""

from __future__ import annotations

from ..schedules.dwconv_int16 import DwconvInt16
from ..workloads.depthwise import DepthwiseConv2DSpec
from ..workloads.dwconv_int16 import NAME, build_dwconv_int16
from .base import ZeroPointKernel


class DwconvInt16Kernel(ZeroPointKernel):
    name = NAME
    kind = "depthwise"
    computes = "zero points subtracted, int16 x int16 products accumulated in int32"
    applies_when = "every depthwise layer (int8 or uint8, any zero points, per-channel or per-tensor)"
    isa_forms = {"aarch64": "SMLAL/SMLAL2 .4s (int16 lanes)", "armv7": "VMLAL.S16"}
    mac_pattern = {"aarch64": r"smlal2?\s+v\d+\.4s,\s*v\d+\.[48]h",
                   "armv7": r"vmlal\.s16\s+q\d+,\s*d\d+,\s*d\d+"}
    rule = DwconvInt16()

    def applies(self, spec, weight=None) -> bool:
        return isinstance(spec, DepthwiseConv2DSpec)

    def _build(self, spec):
        return build_dwconv_int16(spec)
