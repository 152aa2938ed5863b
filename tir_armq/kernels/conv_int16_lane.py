"""`conv_int16_lane`: the seed's dense conv (KxK and 1x1), any 8-bit scheme."""

from __future__ import annotations

from ..requantize import RequantizeParams
from ..schedules.conv_int16_lane import ConvInt16Lane
from ..workloads.conv import Conv2DSpec
from ..workloads.conv_int16_lane import NAME, build_conv_int16_lane
from .base import ConvKernel, Operands, zero_point_operands


class ConvInt16LaneKernel(ConvKernel):
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

    def prepare(self, spec, weight, bias, requantize: RequantizeParams | None = None) -> Operands:
        return Operands((weight, bias, *zero_point_operands(spec)),
                        None if requantize is None else requantize.broadcast(spec.out_channels))

    def _build(self, spec):
        return build_conv_int16_lane(spec)
