"""Quantized elementwise ADD of two int8/uint8 tensors (MobileNetV2's residual adds), with the
integer arithmetic of TFLite's builtin kernel (`optimized_integer_ops::AddElementwise`, NEON):

    a   = SQRDMULH((x1 + offset1) << (20 + shift1), multiplier1)      likewise b
    s   = RoundingDivideByPOT(SQRDMULH(a + b, out_multiplier), -out_shift)
    out = clamp(saturate(int16(s) + out_offset))

Blocks of 16 elements take that NEON form; the kernel's scalar tail (the last size % 16
elements) rounds each input's shift separately (`MultiplyByQuantizedMultiplierSmallerThanOneExp`):
both are reproduced, by flat index. Parameters as TFLite's Prepare derives them (`add_params`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

from ..requantize import quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul
from .params import check_dtype, check_positive_ints, dtype_range

OP_NAME = "add_nhwc"
LEFT_SHIFT = 20  # TFLite's headroom for 8-bit inputs
NEON_BLOCK = 16
# offset_clamp-like argument: the int32 parameters, in this order.
PARAM_NAMES = ("offset1", "multiplier1", "shift1", "offset2", "multiplier2", "shift2",
               "out_multiplier", "out_shift", "out_offset", "clamp_low", "clamp_high")


@dataclass(frozen=True)
class AddParams:
    offset1: int
    multiplier1: int
    shift1: int
    offset2: int
    multiplier2: int
    shift2: int
    out_multiplier: int
    out_shift: int
    out_offset: int
    clamp_low: int
    clamp_high: int

    def array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in PARAM_NAMES], dtype=np.int32)


def add_params(scale1: float, zero_point1: int, scale2: float, zero_point2: int, out_scale: float,
               out_zero_point: int, dtype: str, clamp: tuple[int, int] | None = None) -> AddParams:
    """TFLite's ADD Prepare for 8-bit tensors (float32 scales as in the model)."""
    f32 = np.float32
    twice_max = 2.0 * float(max(f32(scale1), f32(scale2)))
    m1, s1 = quantize_multiplier(float(f32(scale1)) / twice_max)
    m2, s2 = quantize_multiplier(float(f32(scale2)) / twice_max)
    mo, so = quantize_multiplier(twice_max / float(f32(1 << LEFT_SHIFT) * f32(out_scale)))
    lo, hi = clamp or dtype_range(dtype)
    return AddParams(-int(zero_point1), m1, s1, -int(zero_point2), m2, s2, mo, so, int(out_zero_point), lo, hi)


def add_reference(x1: np.ndarray, x2: np.ndarray, p: AddParams) -> np.ndarray:
    """The kernel's arithmetic in numpy (int64, wrapping where the kernel's int32/int16 lanes wrap)."""
    dtype = x1.dtype
    a = x1.astype(np.int64).reshape(-1) + p.offset1
    b = x2.astype(np.int64).reshape(-1) + p.offset2
    size = a.size
    neon = np.arange(size) < size - size % NEON_BLOCK

    def wrap32(v):
        return (v + 2**31) % 2**32 - 2**31

    def neon_scale(v, m, shift):
        total = LEFT_SHIFT + shift
        v = wrap32(v << total) if total >= 0 else v >> -total
        return saturating_rounding_doubling_high_mul(v, m)

    def tail_scale(v, m, shift):
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(wrap32(v << LEFT_SHIFT), m), -shift)

    sa = np.where(neon, neon_scale(a, p.multiplier1, p.shift1), tail_scale(a, p.multiplier1, p.shift1))
    sb = np.where(neon, neon_scale(b, p.multiplier2, p.shift2), tail_scale(b, p.multiplier2, p.shift2))
    s = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(wrap32(sa + sb), p.out_multiplier), -p.out_shift)
    # NEON: truncating narrow to int16, wrapping int16 add, saturating narrow; tail: int32 add.
    narrow = (s + 2**15) % 2**16 - 2**15
    neon_out = np.clip((narrow + p.out_offset + 2**15) % 2**16 - 2**15, *dtype_range(str(dtype)))
    out = np.where(neon, neon_out, s + p.out_offset)
    return np.clip(out, p.clamp_low, p.clamp_high).astype(dtype).reshape(x1.shape)


def add_nhwc(shape, dtype: str = "int8") -> tirx.PrimFunc:
    """PrimFunc `(x1, x2, params, output)`; params the int32 array of `AddParams`.

    Stages `scaled1`, `scaled2` (each input rescaled, int32) and `add`: each formula reads its
    operands several times, so one fused expression would grow exponentially."""
    shape = check_positive_ints("shape", shape, len(shape))
    dtype = check_dtype("dtype", dtype)
    x1 = te.placeholder(shape, dtype, name="x1")
    x2 = te.placeholder(shape, dtype, name="x2")
    params = te.placeholder((len(PARAM_NAMES),), "int32", name="params")
    size = int(np.prod(shape))
    neon_end = size - size % NEON_BLOCK
    lo, hi = dtype_range(dtype)

    def p(name: str):
        return params(PARAM_NAMES.index(name)).astype("int64")

    def i64(v):
        return tirx.const(v, "int64")

    def wrap32(v):
        return tirx.Cast("int64", tirx.Cast("int32", v))

    def srdhm(v, m):
        prod = v * m
        nudge = tirx.Select(prod >= i64(0), i64(1 << 30), i64(1 - (1 << 30)))
        return tirx.min(tirx.truncdiv(prod + nudge, i64(1 << 31)), i64(2**31 - 1))

    def rdbpot(v, exponent):
        mask = tirx.shift_left(i64(1), exponent) - i64(1)
        threshold = tirx.shift_right(mask, i64(1)) + tirx.Cast("int64", v < i64(0))
        return tirx.shift_right(v, exponent) + tirx.Cast("int64", tirx.bitwise_and(v, mask) > threshold)

    def in_neon(index):
        flat = i64(0)
        for axis, extent in zip(index, shape):
            flat = flat * i64(extent) + tirx.Cast("int64", axis)
        return flat < i64(neon_end)

    def scaled(x, k: int):
        m, shift, offset = p(f"multiplier{k}"), p(f"shift{k}"), p(f"offset{k}")

        def body(*index):
            v = x(*index).astype("int64") + offset
            total = i64(LEFT_SHIFT) + shift
            shifted = tirx.Select(total >= i64(0), wrap32(tirx.shift_left(v, tirx.max(total, i64(0)))),
                                  tirx.shift_right(v, tirx.max(i64(0) - total, i64(0))))
            tail = rdbpot(srdhm(wrap32(tirx.shift_left(v, i64(LEFT_SHIFT))), m), i64(0) - shift)
            return tirx.Cast("int32", tirx.Select(in_neon(index), srdhm(shifted, m), tail))

        return te.compute(shape, body, name=f"scaled{k}")

    scaled1, scaled2 = scaled(x1, 1), scaled(x2, 2)

    def body(*index):
        total = wrap32(scaled1(*index).astype("int64") + scaled2(*index).astype("int64"))
        s = rdbpot(srdhm(total, p("out_multiplier")), i64(0) - p("out_shift"))
        narrowed = tirx.Cast("int64", tirx.Cast("int16", tirx.Cast("int64", tirx.Cast("int16", s)) + p("out_offset")))
        neon_out = tirx.max(tirx.min(narrowed, i64(hi)), i64(lo))
        out = tirx.Select(in_neon(index), neon_out, s + p("out_offset"))
        return tirx.Cast(dtype, tirx.max(tirx.min(out, p("clamp_high")), p("clamp_low")))

    out = te.compute(shape, body, name="add")
    func = te.create_prim_func([x1, x2, params, out])
    return func.with_attrs({"global_symbol": OP_NAME, "tirx.noalias": True, "tir_armq.op": OP_NAME})
