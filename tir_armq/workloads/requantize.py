"""TFLite's requantize as a TIR expression: the epilogue of a requantizing workload and the `desc`
of the requantize intrinsics, written once so that tensorize matches the two structurally.

Computed in int64, which gives every int32 input TFLite's answer without overflow corner cases
(`tir_armq.requantize` is the numpy twin). The NEON intrinsics compute the same in 32-bit lanes
with SQRDMULH and SRSHL; nothing int64 is left in a tensorized kernel.
"""

from __future__ import annotations

from tvm import tirx

INT32_MAX = 2**31 - 1


def _with_lanes(dtype: str, lanes: int) -> str:
    return dtype if lanes == 1 else f"{dtype}x{lanes}"


def _i64(value: tirx.PrimExpr) -> tirx.PrimExpr:
    return tirx.Cast(_with_lanes("int64", value.ty.dtype.lanes), value)


def requantize_expr(
    acc: tirx.PrimExpr,
    multiplier: tirx.PrimExpr,
    shift: tirx.PrimExpr,
    offset: tirx.PrimExpr,
    low: tirx.PrimExpr,
    high: tirx.PrimExpr,
    out_dtype: str,
    rounding: str = "away",
) -> tirx.PrimExpr:
    """`clamp(MultiplyByQuantizedMultiplier(acc, multiplier, shift) + offset, low, high)` as
    `out_dtype`; all operands int32 with the same lanes (scalars broadcast), multiplier >= 0.
    `rounding`: "away" (RoundingDivideByPOT) or "upward" (TFLite's kUpward) after SRDHM, or
    "single" (ruy: one rounding of x * multiplier)."""
    lanes = acc.ty.dtype.lanes
    if rounding == "single":
        return _single_rounding(acc, multiplier, shift, offset, low, high, out_dtype)

    def c64(value: int) -> tirx.PrimExpr:
        scalar = tirx.const(value, "int64")
        return scalar if lanes == 1 else tirx.Broadcast(scalar, lanes)

    one = tirx.const(1, "int64")
    zero32 = tirx.const(0, "int32")
    left = tirx.max(shift, zero32)
    right = _i64(tirx.max(zero32 - shift, zero32))
    # x * 2**left wraps in int32, as in TFLite's C.
    shifted = tirx.Cast(acc.ty.dtype, tirx.shift_left(_i64(acc), _i64(left)))
    # SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2**31 truncated; only INT_MIN * INT_MIN saturates.
    prod = _i64(shifted) * _i64(multiplier)
    # sign(prod) is sign(shifted): multipliers are Q31 values in [0, 2**31) (for 0 either nudge
    # gives 0). Testing the int32 factor also keeps int64 out of the condition, where tensorize's
    # index-dtype normaliser would narrow it to int32.
    nudge = tirx.Select(shifted >= tirx.const(0, "int32"), c64(1 << 30), c64(1 - (1 << 30)))
    doubled_high = tirx.min(tirx.truncdiv(prod + nudge, tirx.const(1 << 31, "int64")), tirx.const(INT32_MAX, "int64"))
    mask = tirx.shift_left(one, right) - one
    if rounding == "upward":
        # Half toward +inf: add half the divisor (0 for a zero shift), shift.
        rounded = tirx.shift_right(doubled_high + tirx.shift_right(mask + one, one), right)
    elif rounding == "away":
        # RoundingDivideByPOT: half away from zero.
        threshold = tirx.shift_right(mask, one) + tirx.Cast(mask.ty.dtype, doubled_high < tirx.const(0, "int64"))
        rounded = tirx.shift_right(doubled_high, right) + tirx.Cast(
            mask.ty.dtype, tirx.bitwise_and(doubled_high, mask) > threshold
        )
    else:
        raise ValueError(f"rounding: expected 'away', 'upward' or 'single', got {rounding!r}")
    clamped = tirx.max(tirx.min(rounded + _i64(offset), _i64(high)), _i64(low))
    return tirx.Cast(_with_lanes(out_dtype, lanes), clamped)


def _single_rounding(acc, multiplier, shift, offset, low, high, out_dtype: str) -> tirx.PrimExpr:
    """ruy's `(acc * multiplier + 2**(30 - shift)) >> (31 - shift)`, exact in int64, then clamped."""
    lanes = acc.ty.dtype.lanes
    one = tirx.const(1, "int64")
    total = _i64(tirx.const(31, "int32") - shift)
    rounded = tirx.shift_right(_i64(acc) * _i64(multiplier) + tirx.shift_left(one, total - one), total)
    clamped = tirx.max(tirx.min(rounded + _i64(offset), _i64(high)), _i64(low))
    return tirx.Cast(_with_lanes(out_dtype, lanes), clamped)


def requantize_block(shape: tuple[int, int, int, int], out_dtype: str, rounding: str):
    """The `requantize` epilogue block over an NHWC output, as a TVMScript macro
    `(output, multiplier, shift, offset_clamp, requantize)`, for workloads written in TVMScript."""
    from tvm.script import tirx as T

    @T.macro
    def block(output, multiplier, shift, offset_clamp, requantize):
        for b, y, x, oc in T.grid(*shape):
            with T.sblock("requantize"):
                v_b, v_y, v_x, v_oc = T.axis.remap("SSSS", [b, y, x, oc])
                requantize[v_b, v_y, v_x, v_oc] = requantize_expr(
                    output[v_b, v_y, v_x, v_oc], multiplier[v_oc], shift[v_oc],
                    offset_clamp[0], offset_clamp[1], offset_clamp[2], out_dtype, rounding)

    return block


NAME = "requantize_q8"  # the kernel variant: TFLite's requantize on its own


def requantize_nhwc(shape: tuple[int, ...], out_dtype: str = "int8", rounding: str = "away",
                    right_shifts: bool = False) -> tirx.PrimFunc:
    """Standalone epilogue `(acc, multiplier, shift, offset_clamp, output)`: int32 `acc` of any
    rank, channels last, to `out_dtype`; per-channel int32 multiplier and shift, and
    `offset_clamp = (output zero point, clamp low, clamp high)`. The fused conv epilogues compute
    the same block. `right_shifts`: the caller promises every shift < 0 (QuantConvSpec.right_shifts)."""
    from tvm import te

    from .params import check_positive_ints

    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)) or not shape:
        raise TypeError(f"shape: expected a non-empty tuple of ints, got {shape!r}")
    shape = check_positive_ints("shape", shape, len(shape))
    if out_dtype not in ("int8", "uint8"):
        raise ValueError(f"out_dtype: expected int8 or uint8, got {out_dtype!r}")
    channels = shape[-1]
    acc = te.placeholder(shape, "int32", name="acc")
    multiplier = te.placeholder((channels,), "int32", name="multiplier")
    shift = te.placeholder((channels,), "int32", name="shift")
    offset_clamp = te.placeholder((3,), "int32", name="offset_clamp")
    out = te.compute(
        shape,
        lambda *i: requantize_expr(acc(*i), multiplier(i[-1]), shift(i[-1]), offset_clamp(0), offset_clamp(1),
                                   offset_clamp(2), out_dtype, rounding),
        name="requantize",
    )
    func = te.create_prim_func([acc, multiplier, shift, offset_clamp, out])
    promise = {"tir_armq.right_shifts": True} if right_shifts else {}
    symbol = f"{NAME}_{'x'.join(map(str, shape))}_{out_dtype}_{rounding}{'_rshift' if right_shifts else ''}"
    return func.with_attrs({"global_symbol": symbol, "tir_armq.kernel": NAME, "tirx.noalias": True,
                            "tir_armq.rounding": rounding, **promise})
