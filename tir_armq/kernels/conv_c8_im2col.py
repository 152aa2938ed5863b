"""`conv_c8_im2col`: dense KxK convs of TFLite's int8 scheme in `conv_c8`'s arithmetic, on packed
patches (the MobileNet stem's 3x3 stride-2 conv of an RGB image among them)."""

from __future__ import annotations

import numpy as np

from ..requantize import RequantizeParams
from ..schedules.conv_c8_im2col import ConvC8Im2col
from ..workloads.conv import Conv2DSpec
from ..workloads.conv_c8_im2col import NAME, build_conv_c8_im2col, pack_weights
from .base import Operands, fold_data_zero_point, symmetric_int8
from .conv_c8 import ConvC8Kernel


class ConvC8Im2colKernel(ConvC8Kernel):
    """`conv_c8` (its output channel padding, bias folding, intrinsics) on a KxK conv's patches."""

    name = NAME
    computes = ("a pixel's patch (KH*KW*Cin values, padded to 8) packed per output row, then conv_c8's "
                "8-bit products into int16 pairs, pairwise added into int32; data zero point folded into "
                "the bias")
    applies_when = ("KxK convs (KH*KW > 1) of TFLite's int8 scheme, any stride, dilation, padding and "
                    "channels (output channels padded to 8)")
    rule = ConvC8Im2col()

    def applies(self, spec, weight=None) -> bool:
        return (isinstance(spec, Conv2DSpec) and symmetric_int8(spec, weight)
                and spec.kernel[0] * spec.kernel[1] > 1 and self.fits_tile(spec))

    def prepare(self, spec, weight, bias, requantize: RequantizeParams | None = None) -> Operands:
        # Every value the kernel multiplies is the data or its zero point (padding, and padded taps
        # under zero weights): the data zero point goes into the bias, and stays an operand only as
        # the padding's value.
        bias = fold_data_zero_point(spec, weight, bias)
        (weight, bias), requantize = self._padded_channels(spec, pack_weights(spec, weight), bias, requantize)
        return Operands((weight, bias, np.array([spec.data_zero_point], np.int32)), requantize)

    def _build(self, spec):
        return build_conv_c8_im2col(spec)
