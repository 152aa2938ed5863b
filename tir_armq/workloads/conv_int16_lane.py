"""The seed's dense conv arithmetic (KxK and 1x1): zero points subtracted, int16 x int16 into int32,
for the by-element MAC (SMLAL .h[k] / VMLAL.S16 d[k]).

Stages:
  data_pad[n, y, x, ic]                  input padded with its zero point
  data_vec[n, oh, ow, kh, kw, ic]        int16(data_pad[n, oh*sh + kh*dh, ow*sw + kw*dw, ic]) - zp_data
  weight_vec[oc, kh, kw, ic]             int16(weight[oc, kh, kw, ic]) - zp_weight[oc]
  conv[n, oh, ow, oc]                    sum_{kh, kw, ic} int32(data_vec) * int32(weight_vec)
  output[n, oh, ow, oc]                  conv + bias
  [requantize[n, oh, ow, oc]]            TFLite's requantize to int8/uint8
  [residual_add[n, oh, ow, oc]]          TFLite's ADD of requantize and the `residual` input
Weights are OHWI, as TFLite stores them; `weight_vec` is where schedules re-layout them. Any dtypes
and zero points: the zero points are arguments.

PrimFunc `(data, weight, bias, weight_zero_point, data_zero_point[, epilogue...], output)`.
"""

from __future__ import annotations

from tvm import te, tirx

from .conv import Conv2DSpec
from .stages import add_bias, epilogue_args, pad_data, placeholders, to_prim_func, widen_data, widen_weight

NAME = "conv_int16_lane"


def build_conv_int16_lane(spec: Conv2DSpec) -> tirx.PrimFunc:
    n, _, _, cin = spec.data_shape
    kh_, kw_ = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh_, ow_ = spec.out_hw

    data, weight, bias, weight_zp, data_zp = placeholders(spec)
    data_pad = pad_data(spec, data, data_zp)
    data_vec = te.compute(
        (n, oh_, ow_, kh_, kw_, cin),
        lambda b, y, x, i, j, c: widen_data(data_pad[b, y * sh + i * dh, x * sw + j * dw, c], data_zp),
        name="data_vec",
    )
    weight_vec = te.compute(
        (spec.out_channels, kh_, kw_, cin),
        lambda o, i, j, c: widen_weight(weight[o, i, j, c], weight_zp, o),
        name="weight_vec",
    )
    ki = te.reduce_axis((0, kh_), name="kh")
    kj = te.reduce_axis((0, kw_), name="kw")
    kc = te.reduce_axis((0, cin), name="ic")
    conv = te.compute(
        (n, oh_, ow_, spec.out_channels),
        lambda b, y, x, o: te.sum(
            data_vec[b, y, x, ki, kj, kc].astype("int32") * weight_vec[o, ki, kj, kc].astype("int32"),
            axis=[ki, kj, kc],
        ),
        name="conv",
    )
    output = add_bias(spec, lambda b, y, x, o: conv[b, y, x, o], bias)
    return to_prim_func(spec, NAME, [data, weight, bias, weight_zp, data_zp, *epilogue_args(spec, output)])
