"""Spatial mean of an int8/uint8 NHWC tensor (TFLite's MEAN over axes 1 and 2, MobileNet's global
average pooling), requantized in integers as the interpreter's kernel does:

    acc[n, c]    = sum_{y, x} (int32(data[n, y, x, c]) - input_zero_point)
    output[n, c] = clamp(MultiplyByQuantizedMultiplier(acc, multiplier, shift) + output_zero_point)

with TFLite's parameters (`mean_params`): the multiplier of input_scale / output_scale, then the
division by the H * W elements folded into it in integers (shifted up by floor(log2(H*W)), divided,
truncated), as LiteRT's builtin MEAN does: bit-exact against it on the board
(tests/test_model_build.py), where the exact real multiplier was not.

With keep_dims (Keras' MobileNet V1 pools so) the interpreter takes its optimized int8 kernel
instead (`optimized_integer_ops::Mean`), whose arithmetic differs: the raw sum, one multiplier of
input_scale / (H * W * output_scale) in float32, SRSHL's round-half-up in its NEON blocks of 16
channels, and the input zero point folded into the added offset (`optimized_mean_params`; the
same workload with input_zero_point 0).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ..requantize import RequantizeParams, quantize_multiplier
from .params import check_dtype, check_positive_ints, dtype_range
from .requantize import requantize_expr

NAME = "gavgpool_q8"  # the kernel variant: TFLite's MEAN over H and W, global average pooling


def mean_params(shape, input_scale: float, output_scale: float, output_zero_point: int, dtype: str,
                rounding: str = "away") -> RequantizeParams:
    """The requantize of the mean, derived as TFLite does (see the module docstring)."""
    _, h, w, c = shape
    elements = h * w
    multiplier, shift = quantize_multiplier(float(input_scale) / float(output_scale))
    up = min(elements.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << up) // elements  # no longer normalised to [2**30, 2**31): that is TFLite's
    return RequantizeParams(np.full(c, multiplier, np.int32), np.full(c, shift - up, np.int32),
                            int(output_zero_point), dtype_range(dtype), dtype, rounding)


def optimized_mean_params(shape, input_scale: float, input_zero_point: int, output_scale: float,
                          output_zero_point: int, dtype: str = "int8") -> RequantizeParams:
    """TFLite's optimized int8 Mean over H and W (keep_dims), for channels in its NEON blocks:
    `clamp(MBQM_upward(sum x, m, s) + bias)`, its float32 parameter arithmetic reproduced."""
    f32 = np.float32
    _, h, w, c = shape
    multiplier, shift = quantize_multiplier(float(f32(input_scale) / (f32(h * w) * f32(output_scale))))
    temp = f32(input_zero_point) * f32(input_scale) / f32(output_scale)
    temp = temp + f32(0.5) if temp > 0 else temp - f32(0.5)
    bias = int(output_zero_point) - int(temp)  # C's float -> int32 conversion truncates
    return RequantizeParams(np.full(c, multiplier, np.int32), np.full(c, shift, np.int32), int(output_zero_point),
                            dtype_range(dtype), dtype, "upward", offset=bias)


def mean_spatial_nhwc(shape, dtype: str = "int8", rounding: str = "away") -> tirx.PrimFunc:
    """PrimFunc `(data, input_zero_point, multiplier, shift, offset_clamp, output)`: data (N, H, W, C),
    the input zero point one int32 (an argument: one kernel serves every model), output (N, C)."""
    n, h, w, c = check_positive_ints("shape", shape, 4)
    dtype = check_dtype("dtype", dtype)
    data = te.placeholder((n, h, w, c), dtype, name="data")
    zero_point = te.placeholder((1,), "int32", name="input_zero_point")
    multiplier = te.placeholder((c,), "int32", name="multiplier")
    shift = te.placeholder((c,), "int32", name="shift")
    offset_clamp = te.placeholder((3,), "int32", name="offset_clamp")
    y = te.reduce_axis((0, h), name="y")
    x = te.reduce_axis((0, w), name="x")
    total = te.compute(
        (n, c), lambda b, ch: te.sum(data[b, y, x, ch].astype("int32") - zero_point(0), axis=[y, x]), name="sum"
    )
    out = te.compute(
        (n, c),
        lambda b, ch: requantize_expr(total(b, ch), multiplier(ch), shift(ch), offset_clamp(0), offset_clamp(1),
                                      offset_clamp(2), dtype, rounding),
        name="requantize",
    )
    func = te.create_prim_func([data, zero_point, multiplier, shift, offset_clamp, out])
    symbol = f"{NAME}_{h}x{w}x{c}{f'n{n}' if n != 1 else ''}_{dtype}_{rounding}"
    return func.with_attrs({"global_symbol": symbol, "tir_armq.kernel": NAME, "tirx.noalias": True,
                            "tir_armq.rounding": rounding})


def mean_reference(data: np.ndarray, input_zero_point: int, params: RequantizeParams) -> np.ndarray:
    from ..requantize import requantize

    acc = (data.astype(np.int64) - input_zero_point).sum(axis=(1, 2))
    return requantize(acc.astype(np.int32), params)
