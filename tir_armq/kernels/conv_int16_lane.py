"""`conv_int16_lane`: the seed's dense conv (KxK and 1x1), any 8-bit scheme."""

from __future__ import annotations

from ..schedules.conv_int16_lane import ConvInt16Lane
from ..workloads.conv import Conv2DSpec
from ..workloads.conv_int16_lane import NAME, build_conv_int16_lane
from .base import ZeroPointKernel


class ConvInt16LaneKernel(ZeroPointKernel):
    name = NAME
    kind = "conv"
    computes = "zero points subtracted, 4 input channels x 8 output channels of int16 products per step"
    applies_when = "every dense conv (int8 or uint8, any zero points, any kernel, padding and channels)"
    isa_forms = {"aarch64": "SMLAL/SMLAL2 .4s by element (.h[k])", "armv7": "VMLAL.S16 by scalar (d[k])"}
    mac_pattern = {"aarch64": r"smlal2?\s+v\d+\.4s,\s*v\d+\.[48]h",
                   "armv7": r"vmlal\.s16\s+q\d+,\s*d\d+,\s*d\d+"}
    rule = ConvInt16Lane()

    def applies(self, spec, weight=None) -> bool:
        return isinstance(spec, Conv2DSpec)

    def _build(self, spec):
        return build_conv_int16_lane(spec)
