"""TFLite's 8-bit SOFTMAX over the last axis, in integers, as LiteRT's builtin kernel computes it on
AArch64 (`optimized_ops::SoftmaxInt8LUT`, which the interpreter takes where it is built with clang
for aarch64: TFLITE_SOFTMAX_USE_UINT16_LUT):

    u[c]    = x[c] as uint8 bits (int8 + 128)           m = max_c u[c]
    e[c]    = table[u[c] - m + 255]                      table[v] = round(expf(s * (v - 255)) * 65535)
    sum     = sum_c e[c]                                 s = input_scale * beta, float32
    inv     = 1.0f / (float(sum) * output_scale)         float32, then QuantizeMultiplier(inv)
    out[c]  = clamp(MultiplyByQuantizedMultiplier(e[c], multiplier, shift) + output_zero_point)

The table (256 uint16 values, built at build time by `softmax_table`) is an argument, so one kernel
serves every model with the shape. `inv` is a float32, so QuantizeMultiplier of it needs no
rounding: its Q31 multiplier is the 24-bit significand shifted up by 7 and its shift the binary
exponent, read off the float's bits in the kernel. The product rounds twice (SQRDMULH, then the
rounding shift) in the interpreter's NEON blocks of 16 and in its scalar tail alike: measured on the
board with inputs on which one rounding of e * multiplier would differ (tests/test_softmax.py).
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from ..requantize import multiply_by_quantized_multiplier
from .params import check_dtype, check_positive_ints, dtype_range
from .requantize import requantize_expr

NAME = "softmax_q8"  # the kernel variant: TFLite's 8-bit SOFTMAX over the last axis
ROUNDING = "away"  # SQRDMULH, then RoundingDivideByPOT (e >= 0: its ties go up, as SRSHL's do)
UINT16_MAX = 65535


def softmax_table(input_scale: float, beta: float = 1.0) -> np.ndarray:
    """TFLite's `PopulateSoftmaxUInt8LookupTable` as one int32 table of 256 uint16 values:
    `int(expf(s * (v - 255)) * 65535 + 0.5)`, s = input_scale * beta, in float32 as its C does
    (the product's float converted to double for the + 0.5, truncated)."""
    f32 = np.float32
    scale = f32(input_scale) * f32(beta)
    exponent = scale * (np.arange(256, dtype=np.int32) - 255).astype(f32)
    # expf correctly rounded: exp in float64, rounded once to float32.
    value = np.exp(exponent.astype(np.float64)).astype(f32) * f32(UINT16_MAX)
    table = np.floor(value.astype(np.float64) + 0.5).astype(np.int64)
    return np.minimum(table, UINT16_MAX).astype(np.int32)


def inverse_sum_multiplier(sums: np.ndarray, output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) of `1.0f / (float(sum) * output_scale)` per row, as QuantizeMultiplier
    gives them for a float32 value: the significand (with its leading one) << 7, the exponent."""
    f32 = np.float32
    inv = f32(1.0) / (np.asarray(sums, np.int32).astype(f32) * f32(output_scale))
    bits = inv.view(np.int32).astype(np.int64)
    multiplier = ((bits & 0x7FFFFF) | 0x800000) << 7
    shift = ((bits >> 23) & 0xFF) - 126
    return multiplier.astype(np.int32), shift.astype(np.int32)


def _bits(data: np.ndarray) -> np.ndarray:
    """The uint8 reading of the data the interpreter's kernel takes (int8 x ^ 0x80 = x + 128)."""
    return data.astype(np.int32) + (128 if data.dtype == np.int8 else 0)


def softmax_reference(data: np.ndarray, table: np.ndarray, output_scale: float, output_zero_point: int,
                      dtype: str | None = None, rounding: str = ROUNDING) -> np.ndarray:
    """The interpreter's output for `data` (..., C) int8/uint8: see the module docstring. `rounding`
    of the product e * multiplier (`tir_armq.requantize`'s forms): the interpreter's by default."""
    dtype = dtype or str(data.dtype)
    lo, hi = dtype_range(dtype)
    u = _bits(np.asarray(data))
    exps = table[u - u.max(axis=-1, keepdims=True) + 255].astype(np.int64)
    multiplier, shift = inverse_sum_multiplier(exps.sum(axis=-1), output_scale)
    out = multiply_by_quantized_multiplier(exps, multiplier[..., None], shift[..., None], rounding)
    return np.clip(out + output_zero_point, lo, hi).astype(dtype)


def softmax_rows(shape, dtype: str = "int8") -> tirx.PrimFunc:
    """PrimFunc `(data, table, output_scale, output_zero_point, output)`: data (N, C) int8/uint8,
    the table (256,) int32 (`softmax_table`), the output scale one float32 and the output zero
    point one int32 (arguments: one kernel serves every model), output (N, C) of the data's dtype."""
    n, c = check_positive_ints("shape", shape, 2)
    dtype = check_dtype("dtype", dtype)
    lo, hi = dtype_range(dtype)
    data = te.placeholder((n, c), dtype, name="data")
    table = te.placeholder((256,), "int32", name="table")
    scale = te.placeholder((1,), "float32", name="output_scale")
    zero_point = te.placeholder((1,), "int32", name="output_zero_point")
    offset = 128 if dtype == "int8" else 0

    def bits(b, ch):
        return data(b, ch).astype("int32") + offset

    k = te.reduce_axis((0, c), name="k")
    peak = te.compute((n,), lambda b: te.max(bits(b, k), axis=k), name="peak")
    exps = te.compute((n, c), lambda b, ch: table(bits(b, ch) - peak(b) + 255), name="exps")
    j = te.reduce_axis((0, c), name="j")
    total = te.compute((n,), lambda b: te.sum(exps(b, j), axis=j), name="total")

    def inverse_bits(b):
        inverse = tirx.const(1.0, "float32") / (total(b).astype("float32") * scale(0))
        return tirx.reinterpret("int32", inverse)

    multiplier = te.compute((n,), lambda b: tirx.bitwise_or(
        tirx.bitwise_and(inverse_bits(b), 0x7FFFFF), 0x800000) << 7, name="multiplier")
    shift = te.compute((n,), lambda b: tirx.bitwise_and(inverse_bits(b) >> 23, 0xFF) - 126, name="shift")

    def normalized(b, ch):
        return requantize_expr(exps(b, ch), multiplier(b), shift(b), zero_point(0), tirx.const(lo, "int32"),
                               tirx.const(hi, "int32"), dtype, ROUNDING)

    out = te.compute((n, c), normalized, name="softmax")
    func = te.create_prim_func([data, table, scale, zero_point, out])
    symbol = f"{NAME}_{n}x{c}_{dtype}"
    return func.with_attrs({"global_symbol": symbol, "tir_armq.kernel": NAME, "tirx.noalias": True})
