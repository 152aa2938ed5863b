"""`conv_c2`: the pointwise conv of TFLite's int8 scheme with output channels in the lanes
(XNNPACK's qs8 GEMM "c2" arithmetic)."""

from __future__ import annotations

from ..requantize import RequantizeParams
from ..schedules.conv_c2 import ConvC2
from ..workloads.conv import Conv2DSpec
from ..workloads.conv_c2 import K_STEP, NAME, OC_TILE, build_conv_c2, pair_channels
from .base import Operands, OutputTileKernel, fold_data_zero_point, symmetric_int8, unpadded_pointwise


class ConvC2Kernel(OutputTileKernel):
    name = NAME
    oc_tile = OC_TILE
    kind = "conv"
    computes = ("input channel pairs broadcast against 8 output channels' weight pairs, 8-bit products "
                "two pairs summed in int16, pairwise added into one int32 lane per output channel; "
                "data zero point folded into the bias")
    applies_when = ("1x1 unpadded convs and fully-connected layers of TFLite's int8 scheme, input channels a "
                    "multiple of 4 (output channels padded to 8)")
    isa_forms = {"aarch64": "LD1R .4h + SMULL/SMLAL .8h (8-bit lanes) + SADALP .4s",
                 "armv7": "VLD1.16 {d[]} + VMULL.S8/VMLAL.S8 + VPADAL.S16"}
    mac_pattern = {"aarch64": r"smlal\s+v\d+\.8h,\s*v\d+\.8b,\s*v\d+\.8b", "armv7": r"vmlal\.s8\s+q\d+"}
    symmetric_weights = True
    rule = ConvC2()

    def applies(self, spec, weight=None) -> bool:
        return (isinstance(spec, Conv2DSpec) and symmetric_int8(spec, weight) and unpadded_pointwise(spec)
                and spec.data_shape[3] % K_STEP == 0 and self.fits_tile(spec))

    def prepare(self, spec, weight, bias, requantize: RequantizeParams | None = None) -> Operands:
        # The unpadded conv's data zero point goes into the bias: the kernel never sees it.
        bias = fold_data_zero_point(spec, weight, bias)
        (weight, bias), requantize = self._padded_channels(spec, weight, bias, requantize)
        return Operands((pair_channels(weight), bias), requantize)

    def _build(self, spec):
        return build_conv_c2(spec)
