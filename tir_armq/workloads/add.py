"""Quantized elementwise ADD of two int8/uint8 tensors (MobileNetV2's residual adds), with the
integer arithmetic of TFLite's builtin kernel (`optimized_integer_ops::AddElementwise`, NEON):

    a   = SQRDMULH((x1 + offset1) << (20 + shift1), multiplier1)      likewise b
    s   = RoundingDivideByPOT(SQRDMULH(a + b, out_multiplier), -out_shift)
    out = clamp(saturate(int16(s) + out_offset))

Blocks of 16 elements take that NEON form; the kernel's scalar tail (the last size % 16
elements) rounds each input's shift separately (`MultiplyByQuantizedMultiplierSmallerThanOneExp`):
both are reproduced, by flat index. Parameters as TFLite's Prepare derives them (`add_params`).

`add_expr` is the NEON form as one TIR expression: the block of a tensor without a tail, the
residual-add epilogue fused into a conv (`tir_armq.workloads.conv`) and the desc of the quantized
add intrinsics, written once so that tensorize matches them structurally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

from ..requantize import quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul
from .params import check_dtype, check_positive_ints, dtype_range

NAME = "vadd_q8"  # the kernel variant: TFLite's 8-bit ADD
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

    def __post_init__(self) -> None:
        # Prepare derives input multipliers < 1 (shifts in [-31, 0]) and an output one far below
        # 1: the NEON form relies on both (no wrap in x << 20, right shifts only).
        for name in ("shift1", "shift2", "out_shift"):
            if not -31 <= getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a right shift in [-31, 0], got {getattr(self, name)}")
        for name in ("multiplier1", "multiplier2", "out_multiplier"):
            if not 0 <= getattr(self, name) < 2**31:
                raise ValueError(f"{name}: expected a Q31 multiplier in [0, 2**31), got {getattr(self, name)}")

    def array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in PARAM_NAMES], dtype=np.int32)

    def swapped(self) -> "AddParams":
        """The same sum with the inputs exchanged (the arithmetic is symmetric in them)."""
        return AddParams(self.offset2, self.multiplier2, self.shift2, self.offset1, self.multiplier1, self.shift1,
                         self.out_multiplier, self.out_shift, self.out_offset, self.clamp_low, self.clamp_high)


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


def add_expr(x1: tirx.PrimExpr, x2: tirx.PrimExpr, params: Sequence[tirx.PrimExpr], dtype: str) -> tirx.PrimExpr:
    """The NEON form of one output element: `x1`, `x2` of `dtype`, `params` the 11 int32 scalars
    of `PARAM_NAMES`. Exact in int64; with AddParams' ranges nothing wraps before the int16 narrow
    (|x + offset| <= 255, so (x + offset) << 20 < 2**28 and so is each rescaled input), and
    `(v << 20) >> -shift` is the kernel's single SSHL by 20 + shift (a floor shift either way).

    Written as the NEON instructions compute, without comparisons of int64 values (tensorize's
    index-dtype normaliser would narrow them, constants and all, to int32):
    SaturatingRoundingDoublingHighMul, which cannot saturate here, is SQRDMULH's
    `(v * m + 2**30) >> 31`; RoundingDivideByPOT is gemmlowp's NEON fixup (-1 for a negative
    value and a non-zero shift) before a rounding shift."""
    p = dict(zip(PARAM_NAMES, params))

    def i64(v):
        return tirx.Cast("int64", v)

    def c64(v: int):
        return tirx.const(v, "int64")

    def srdhm(v, m):
        return tirx.shift_right(v * i64(m) + c64(1 << 30), c64(31))

    def scaled(x, k: int):
        v = i64(x.astype("int32") + p[f"offset{k}"])
        return srdhm(tirx.shift_right(tirx.shift_left(v, c64(LEFT_SHIFT)), i64(0 - p[f"shift{k}"])), p[f"multiplier{k}"])

    s = srdhm(scaled(x1, 1) + scaled(x2, 2), p["out_multiplier"])
    exponent = 0 - p["out_shift"]
    fixup = tirx.shift_right(s, c64(63)) * i64(exponent > 0)
    s = tirx.shift_right(s + fixup + tirx.shift_right(tirx.shift_left(c64(1), i64(exponent)), c64(1)), i64(exponent))
    # Truncating narrow to int16, wrapping int16 add of the zero point, saturate, clamp.
    narrowed = tirx.Cast("int16", tirx.Cast("int16", s).astype("int32") + p["out_offset"]).astype("int32")
    lo, hi = dtype_range(dtype)
    low = tirx.max(p["clamp_low"], tirx.const(lo, "int32"))
    high = tirx.min(p["clamp_high"], tirx.const(hi, "int32"))
    return tirx.Cast(dtype, tirx.max(tirx.min(narrowed, high), low))


def has_tail(shape: Sequence[int]) -> bool:
    """The kernel takes the last size % 16 elements through its scalar formula."""
    return int(np.prod(shape)) % NEON_BLOCK != 0


def add_nhwc(shape, dtype: str = "int8") -> tirx.PrimFunc:
    """PrimFunc `(x1, x2, params, output)`; params the int32 array of `AddParams`.

    Without a tail one block `add` of `add_expr`. With one, stages `scaled1`, `scaled2` (each
    input rescaled, int32) and `add` select the kernel's form by flat index: each formula reads
    its operands several times, so one fused expression of both forms would grow exponentially."""
    shape = check_positive_ints("shape", shape, len(shape))
    dtype = check_dtype("dtype", dtype)
    x1 = te.placeholder(shape, dtype, name="x1")
    x2 = te.placeholder(shape, dtype, name="x2")
    params = te.placeholder((len(PARAM_NAMES),), "int32", name="params")
    if has_tail(shape):
        out = _add_with_tail(shape, dtype, x1, x2, params)
    else:
        scalars = [params(k) for k in range(len(PARAM_NAMES))]
        out = te.compute(shape, lambda *i: add_expr(x1(*i), x2(*i), scalars, dtype), name="add")
    func = te.create_prim_func([x1, x2, params, out])
    symbol = f"{NAME}_{'x'.join(map(str, shape))}_{dtype}"
    return func.with_attrs({"global_symbol": symbol, "tir_armq.kernel": NAME, "tirx.noalias": True})


def _add_with_tail(shape, dtype: str, x1: te.Tensor, x2: te.Tensor, params: te.Tensor) -> te.Tensor:
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

    return te.compute(shape, body, name="add")
