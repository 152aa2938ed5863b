"""The seed's depthwise arithmetic (TVM PR #4277): zero points subtracted, int16 x int16 into int32.

Stages:
  data_pad[n, y, x, c]                 input padded with its zero point
  data_vec[n, oh, ow, kh, kw, c]       int16(data_pad[n, oh*sh + kh*dh, ow*sw + kw*dw, c]) - zp_data
  weight_vec[c, m, kh, kw]             int16(weight[0, kh, kw, c*M + m]) - zp_weight[c*M + m]
  conv[n, oh, ow, c, m]                sum_{kh, kw} int32(data_vec) * int32(weight_vec)
  output[n, oh, ow, c*M + m]           conv + bias
`data_vec` is the windowed view of the input, so `conv` is a pure einsum of two int16 buffers:
schedules choose its layout (the seed's `(N, OH, OW, C//VC, KH, KW, VC)`) and whether it is
materialised; weights are taken in TFLite's `(1, KH, KW, C*M)` layout and `weight_vec` is where
a schedule puts them into `(C//VC, M, KH, KW, VC)`. Any dtypes and zero points (uint8 models with
asymmetric weights included): the zero points are arguments.

PrimFunc `(data, weight, bias, weight_zero_point, data_zero_point[, epilogue...], output)`.
"""

from __future__ import annotations

from tvm import te, tirx

from .depthwise import DepthwiseConv2DSpec
from .stages import add_bias, epilogue_args, pad_data, placeholders, to_prim_func, widen_data, widen_weight

NAME = "dwconv_int16"


def build_dwconv_int16(spec: DepthwiseConv2DSpec) -> tirx.PrimFunc:
    n, _, _, channels = spec.data_shape
    kh_, kw_ = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh_, ow_ = spec.out_hw
    mult = spec.multiplier

    data, weight, bias, weight_zp, data_zp = placeholders(spec)
    data_pad = pad_data(spec, data, data_zp)
    data_vec = te.compute(
        (n, oh_, ow_, kh_, kw_, channels),
        lambda b, y, x, i, j, c: widen_data(data_pad[b, y * sh + i * dh, x * sw + j * dw, c], data_zp),
        name="data_vec",
    )
    weight_vec = te.compute(
        (channels, mult, kh_, kw_),
        lambda c, m, i, j: widen_weight(weight[0, i, j, c * mult + m], weight_zp, c * mult + m),
        name="weight_vec",
    )
    ki = te.reduce_axis((0, kh_), name="kh")
    kj = te.reduce_axis((0, kw_), name="kw")
    conv = te.compute(
        (n, oh_, ow_, channels, mult),
        lambda b, y, x, c, m: te.sum(
            data_vec[b, y, x, ki, kj, c].astype("int32") * weight_vec[c, m, ki, kj].astype("int32"),
            axis=[ki, kj],
        ),
        name="conv",
    )
    output = add_bias(spec, lambda b, y, x, oc: conv[b, y, x, oc // mult, oc % mult], bias)
    return to_prim_func(spec, NAME, [data, weight, bias, weight_zp, data_zp, *epilogue_args(spec, output)])
