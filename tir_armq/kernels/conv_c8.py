"""`conv_c8`: the pointwise conv of TFLite's int8 scheme in XNNPACK's GEMM "c8" arithmetic."""

from __future__ import annotations

from ..requantize import RequantizeParams
from ..schedules.conv_c8 import ConvC8
from ..workloads.conv import Conv2DSpec
from ..workloads.conv_c8 import K_TAIL, NAME, OC_TILE, build_conv_c8
from .base import Operands, OutputTileKernel, fold_data_zero_point, symmetric_int8, unpadded_pointwise


class ConvC8Kernel(OutputTileKernel):
    name = NAME
    oc_tile = OC_TILE
    kind = "conv"
    computes = ("16 input channels of 8-bit products per step into int16 pairs, pairwise added into "
                "int32; data zero point folded into the bias")
    applies_when = ("1x1 unpadded convs and fully-connected layers of TFLite's int8 scheme, input channels a "
                    "multiple of 8 (output channels padded to 8)")
    isa_forms = {"aarch64": "SMULL/SMLAL .8h (8-bit lanes) + SADALP .4s, ADDP",
                 "armv7": "VMULL.S8/VMLAL.S8 + VPADAL.S16"}
    mac_pattern = {"aarch64": r"sadalp\s+v\d+\.4s,\s*v\d+\.8h", "armv7": r"vpadal\.s16\s+q\d+"}
    symmetric_weights = True
    rule = ConvC8()

    def applies(self, spec, weight=None) -> bool:
        return (isinstance(spec, Conv2DSpec) and symmetric_int8(spec, weight) and unpadded_pointwise(spec)
                and spec.data_shape[3] % K_TAIL == 0 and self.fits_tile(spec))

    def prepare(self, spec, weight, bias, requantize: RequantizeParams | None = None) -> Operands:
        # The unpadded conv's data zero point goes into the bias: the kernel never sees it.
        constants, requantize = self._padded_channels(spec, weight, fold_data_zero_point(spec, weight, bias),
                                                      requantize)
        return Operands(constants, requantize)

    def _build(self, spec):
        return build_conv_c8(spec)
