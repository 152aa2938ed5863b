"""`conv_c8`: the pointwise conv of TFLite's int8 scheme in XNNPACK's GEMM "c8" arithmetic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..requantize import RequantizeParams
from ..schedules.conv_c8 import ConvC8
from ..workloads.conv import Conv2DSpec
from ..workloads.conv_c8 import K_TAIL, NAME, OC_TILE, build_conv_c8
from .base import ConvKernel, Operands, fold_data_zero_point, per_channel, symmetric_int8, with_channels


class ConvC8Kernel(ConvKernel):
    name = NAME
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
        p = spec.padding
        return (isinstance(spec, Conv2DSpec) and symmetric_int8(spec, weight) and spec.kernel == (1, 1)
                and (p.top, p.bottom, p.left, p.right) == (0, 0, 0, 0) and spec.data_shape[3] % K_TAIL == 0
                # a fused residual input has the layer's channels: no padding then
                and (spec.out_channels % OC_TILE == 0 or not spec.residual))

    def kernel_spec(self, spec):
        padded = -(-spec.out_channels // OC_TILE) * OC_TILE
        if padded == spec.out_channels:
            return spec
        return replace(spec, channels_out=padded, weight_zero_point=0)

    def prepare(self, spec, weight, bias, requantize: RequantizeParams | None = None) -> Operands:
        # The unpadded conv's data zero point goes into the bias: the kernel never sees it.
        constants, requantize = self._padded_channels(spec, weight, fold_data_zero_point(spec, weight, bias),
                                                      requantize)
        return Operands(constants, requantize)

    def _padded_channels(self, spec, weight: np.ndarray, bias: np.ndarray, requantize: RequantizeParams | None
                         ) -> tuple[tuple[np.ndarray, np.ndarray], RequantizeParams | None]:
        """((weight, bias), requantize) with the output channels padded to the kernel's tile: zero
        weights and bias for the extra channels (their outputs are sliced off), the first channel's
        requantize parameters."""
        channels = self.kernel_spec(spec).out_channels
        extra = channels - spec.out_channels
        if extra:
            weight = np.concatenate([weight, np.zeros((extra, *weight.shape[1:]), weight.dtype)])
            bias = np.concatenate([bias, np.zeros(extra, np.int32)])
        if requantize is not None:
            requantize = with_channels(per_channel(requantize, spec.out_channels), channels)
        return (weight, bias), requantize

    def _build(self, spec):
        return build_conv_c8(spec)
