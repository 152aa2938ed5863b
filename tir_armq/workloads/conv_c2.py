"""The pointwise conv with output channels in the lanes (XNNPACK's qs8 GEMM "c2" arithmetic), as a
PrimFunc.

TFLite's int8 scheme, as `conv_c8`: int8 data, symmetric int8 weights in [-127, 127], the data zero
point folded into the bias at build time (`sum_k (x_k - zx) * w_k = sum_k x_k * w_k - zx * sum_k w_k`).
The input channels are taken in pairs: a pixel's two bytes x[2p], x[2p+1] broadcast as one int16
against 8 output channels' weight pairs w[n, 2p], w[n, 2p+1] (8-bit products, two pairs summed in
int16, pairwise added into one int32 lane per output channel: `intrinsics/mac_c2.py`). The
accumulators hold output channels, so the epilogue takes them as they are: no horizontal lane sum
per output tile (conv_c8's ADDP tree and its extra SADALPs), which is most of the per-tile cost
where K is small.

  weight[p, oc, e]              input channel 2p + e of output channel oc (`pair_channels`): a
                                pair's bytes adjacent, the output channels of a pair contiguous
  conv -> acc[n, oh, ow, oc]    bias[oc] (the init) + sum_{p, e} int32(x[2p + e]) * int32(w[p, oc, e])
  [requantize, residual_add]    as every conv kernel's epilogue

The accumulators start at the bias (no add per output tile). The conv block declares its reads
without the bias that only its init reads: `decompose_reduction` leaves a block's reads on the
update, and the update is what the intrinsic replaces (its description reads the accumulators,
data and weights); the bias is an input no block writes, so no dependence is lost.

Pointwise layers only (1x1 kernel, no padding), K a multiple of 4 (two pairs per intrinsic; every
MobileNet pointwise layer), output channels padded to 8 by the kernel table.

PrimFunc `(data, weight, bias[, multiplier, shift, offset_clamp][, residual, add_params], output)`.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .conv import Conv2DSpec
from .conv_c8 import gemm_func
from .stages import workload_attrs

NAME = "conv_c2"
K_STEP, OC_TILE = 4, 8


def pair_channels(weight: np.ndarray) -> np.ndarray:
    """TFLite's OHWI 1x1 weights `(OC, 1, 1, K)` as the kernel reads them: `(K / 2, OC, 2)`."""
    oc, k = weight.shape[0], weight.shape[3]
    return np.ascontiguousarray(weight.reshape(oc, k // 2, 2).transpose(1, 0, 2))


def build_conv_c2(spec: Conv2DSpec) -> tirx.PrimFunc:
    """The caller (the kernel table) checks the scheme and the shape (`kernels/conv_c2.py`)."""
    n_, h_, w_, k_ = spec.data_shape
    oh_, ow_ = spec.out_hw
    sh, sw = spec.stride
    oc_ = spec.out_channels
    pairs = k_ // 2

    @T.macro
    def accumulate(data, weight, bias, acc):
        for b, y, x, oc, p, e in T.grid(n_, oh_, ow_, oc_, pairs, 2):
            with T.sblock("conv"):
                v_b, v_y, v_x, v_oc, v_p, v_e = T.axis.remap("SSSSRR", [b, y, x, oc, p, e])
                T.reads(data[v_b, v_y * sh, v_x * sw, v_p * 2 + v_e], weight[v_p, v_oc, v_e])
                T.writes(acc[v_b, v_y, v_x, v_oc])
                with T.init():
                    acc[v_b, v_y, v_x, v_oc] = bias[v_oc]
                acc[v_b, v_y, v_x, v_oc] = acc[v_b, v_y, v_x, v_oc] + T.Cast(
                    "int32", data[v_b, v_y * sh, v_x * sw, v_p * 2 + v_e]
                ) * T.Cast("int32", weight[v_p, v_oc, v_e])

    return gemm_func(spec, (pairs, oc_, 2), accumulate).with_attrs(workload_attrs(spec, NAME))
