"""`dwconv_int8_mla8`: depthwise conv of TFLite's int8 scheme in XNNPACK's mla8 arithmetic."""

from __future__ import annotations

import numpy as np

from ..requantize import RequantizeParams
from ..schedules.dwconv_int8_mla8 import DwconvInt8Mla8
from ..workloads.depthwise import DepthwiseConv2DSpec
from ..workloads.dwconv_int8_mla8 import NAME, build_dwconv_int8_mla8, pair_taps
from .base import ConvKernel, Operands, fold_data_zero_point, per_channel, symmetric_int8


class DwconvInt8Mla8Kernel(ConvKernel):
    name = NAME
    kind = "depthwise"
    computes = "8-bit products in tap pairs summed in int16, into int32; data zero point folded into the bias"
    applies_when = "int8 data, int8 weights in [-127, 127] with zero point 0 (TFLite's int8 scheme)"
    # On ARMv7 LLVM mostly widens the bytes first (VMOVL.S8) and multiplies in int16 lanes, the
    # same 8 products per instruction as VMULL.S8/VMLAL.S8 (which it picks for some tiles).
    isa_forms = {"aarch64": "SMULL/SMLAL .8h (8-bit lanes) + SADDW .4s",
                 "armv7": "VMUL/VMLA.I16 of widened bytes or VMULL/VMLAL.S8, + VADDW.S16"}
    mac_pattern = {"aarch64": r"smlal\s+v\d+\.8h,\s*v\d+\.8b", "armv7": r"(vmla\.i16|vmlal\.s8)\s+[qd]\d+"}
    symmetric_weights = True
    rule = DwconvInt8Mla8()

    def applies(self, spec, weight=None) -> bool:
        return isinstance(spec, DepthwiseConv2DSpec) and symmetric_int8(spec, weight)

    def prepare(self, spec, weight, bias, requantize: RequantizeParams | None = None) -> Operands:
        # The zero point stays an operand only as the padding's value.
        constants = (pair_taps(spec, weight), fold_data_zero_point(spec, weight, bias),
                     np.array([spec.data_zero_point], np.int32))
        return Operands(constants, per_channel(requantize, spec.out_channels))

    def _build(self, spec):
        return build_dwconv_int8_mla8(spec)
