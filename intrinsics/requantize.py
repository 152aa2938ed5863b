"""Requantize intrinsics: int32 accumulators -> int8/uint8, TFLite's fixed-point arithmetic.

`desc`: `O[i] = requantize(A[i], M[i], S[i])` with the output zero point and clamp in `Q[0:3]`
(the workload's epilogue, one expression in `tir_armq.workloads.requantize`). `impl`: per group of
4 lanes, TFLite's NEON sequence

    x  = x << max(S, 0)                     SSHL/USHL (shift >= 0 only in layers with scale > 1)
    y  = sqrdmulh(x, M)                     SQRDMULH / VQRDMULH
    y += (y & min(S, 0)) >> 31              AND, SSHR, SQADD: turns round-half-up into half-away
                                            (rounding "away" only; "upward" is SRSHL's own)
    y  = rounding_shift(y, min(S, 0))       SRSHL / VRSHL
    o  = sat8(sat16(y) +sat zero point)      SQXTN, SQADD .8h, SQXTN/SQXTUN (VQMOVN, VQADD, VQMOVN/VQMOVUN)
    o  = clamp(o)                            SMAX/SMIN on 8-bit lanes

and for "single" (ruy's one rounding of x * M): SQRDMULH of the saturated x << S where S >= 0, else
SRSHL(SQDMULH(x, M), S) (a truncating high half then one rounding shift: floor divisions nest), lane
by lane. No int64 arithmetic remains. An ISA supplies its saturating/rounding primitives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tvm import tirx
from tvm.ir import Expr
from tvm.script import tirx as T

from ..workloads.requantize import requantize_expr

Binary = Callable[[Expr, Expr], Expr]
OUTPUT_DTYPES = ("int8", "uint8")
ROUNDINGS = ("away", "upward", "single")


@dataclass(frozen=True)
class RoundingOps:
    """The int32x4 primitives of an ISA: SQRDMULH, saturating add, rounding shift (negative =
    right), SQDMULH (truncating high half) and saturating shift left; and the narrowing ones:
    int32x4 -> int16x4 saturating (SQXTN), int16x8 saturating add (SQADD), int16x8 -> 8-bit
    saturating (SQXTN / SQXTUN, by output dtype)."""

    doubling_high_mul: Binary
    saturating_add: Binary
    rounding_shift: Binary
    doubling_high_mul_truncating: Binary
    saturating_shift_left: Binary
    narrow_16: Callable[[Expr], Expr]
    saturating_add_16: Binary
    narrow_8: Callable[[Expr, str], Expr]


def requantize_desc(lanes: int, out_dtype: str, rounding: str) -> tirx.PrimFunc:
    # The root's reads list buffers in the order they first occur in the expression: tensorize
    # pairs them with the blockized epilogue's reads by position.
    if rounding == "single":  # acc * multiplier, then the shift

        @T.prim_func(s_tir=True)
        def desc_single(
            A: T.Buffer((lanes,), "int32", offset_factor=1),
            M: T.Buffer((lanes,), "int32", offset_factor=1),
            S: T.Buffer((lanes,), "int32", offset_factor=1),
            Q: T.Buffer((3,), "int32", offset_factor=1),
            O: T.Buffer((lanes,), out_dtype, offset_factor=1),
        ) -> None:
            with T.sblock("root"):
                T.reads(A[0:lanes], M[0:lanes], S[0:lanes], Q[0:3])
                T.writes(O[0:lanes])
                for i in T.serial(lanes):
                    with T.sblock("requantize"):
                        vi = T.axis.remap("S", [i])
                        O[vi] = requantize_expr(A[vi], M[vi], S[vi], Q[0], Q[1], Q[2], out_dtype, rounding)

        return desc_single

    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((lanes,), "int32", offset_factor=1),
        M: T.Buffer((lanes,), "int32", offset_factor=1),
        S: T.Buffer((lanes,), "int32", offset_factor=1),
        Q: T.Buffer((3,), "int32", offset_factor=1),
        O: T.Buffer((lanes,), out_dtype, offset_factor=1),
    ) -> None:
        with T.sblock("root"):  # acc, then the shift (x << left), then the multiplier
            T.reads(A[0:lanes], S[0:lanes], M[0:lanes], Q[0:3])
            T.writes(O[0:lanes])
            for i in T.serial(lanes):
                with T.sblock("requantize"):
                    vi = T.axis.remap("S", [i])
                    O[vi] = requantize_expr(A[vi], M[vi], S[vi], Q[0], Q[1], Q[2], out_dtype, rounding)

    return desc


def _neon_group(ops: RoundingOps, rounding: str, x: Expr, m: Expr, s: Expr) -> Expr:
    """Lanes 4g..4g+3 rescaled, before the zero point: int32x4."""
    zero = T.Broadcast(T.int32(0), 4)
    if rounding.endswith(RIGHT):  # every shift < 0: no left shift, no split of the shift
        rounding, right = rounding[: -len(RIGHT)], s
        if rounding == "single":  # the truncating high half, one rounding shift
            return ops.rounding_shift(ops.doubling_high_mul_truncating(x, m), s)
        y = ops.doubling_high_mul(x, m)
    elif rounding == "single":
        right = T.min(s, zero)
        z = ops.saturating_shift_left(x, T.max(s, zero))
        return T.Select(right < zero, ops.rounding_shift(ops.doubling_high_mul_truncating(z, m), right),
                        ops.doubling_high_mul(z, m))
    else:
        right = T.min(s, zero)
        y = ops.doubling_high_mul(T.shift_left(x, T.max(s, zero)), m)
    if rounding == "away":
        y = ops.saturating_add(y, T.shift_right(T.bitwise_and(y, right), T.Broadcast(T.int32(31), 4)))
    return ops.rounding_shift(y, right)


def _narrow(ops: RoundingOps, groups: list[Expr], Q: tirx.Buffer, out_dtype: str, lanes: int) -> Expr:
    """clamp(y + zero point) to 8 bits, XNNPACK's way: saturate to int16, add the zero point with
    saturation in int16, saturate to 8 bits, clamp in 8 bits. Exact: a value that saturates to
    int16 is beyond any 8-bit clamp before and after the zero point (|zero point| < 2**14)."""
    halves = [ops.narrow_16(y) for y in groups]
    if len(halves) == 1:
        halves = halves * 2
    offset = T.Broadcast(T.Cast("int16", Q[0]), 8)
    bytes8 = [ops.narrow_8(ops.saturating_add_16(tirx.Shuffle([a, b], list(range(8))), offset), out_dtype)
              for a, b in zip(halves[::2], halves[1::2])]
    joined = bytes8[0] if len(bytes8) == 1 else tirx.Shuffle(bytes8, list(range(8 * len(bytes8))))
    if lanes == 4:
        joined = tirx.Shuffle([joined], [0, 1, 2, 3])
    low, high = (T.Broadcast(T.Cast(out_dtype, Q[k]), lanes) for k in (1, 2))
    return T.max(T.min(joined, high), low)


def requantize_impl(lanes: int, out_dtype: str, rounding: str, ops: RoundingOps | None) -> tirx.PrimFunc:
    """`ops` None: the portable form for the host, the desc's int64 expression lane by lane
    (vectorised int64 would meet tensorize's index-dtype normaliser, which takes int64 for indices)."""
    if lanes % 4:
        raise ValueError(f"lanes: requantize intrinsics work on groups of 4 lanes, got {lanes}")
    if ops is None:

        @T.prim_func(s_tir=True)
        def portable(
            A: T.Buffer((lanes,), "int32", offset_factor=1),
            M: T.Buffer((lanes,), "int32", offset_factor=1),
            S: T.Buffer((lanes,), "int32", offset_factor=1),
            Q: T.Buffer((3,), "int32", offset_factor=1),
            O: T.Buffer((lanes,), out_dtype, offset_factor=1),
        ) -> None:
            with T.sblock("root"):
                T.reads(A[0:lanes], S[0:lanes], M[0:lanes], Q[0:3])
                T.writes(O[0:lanes])
                for i in T.serial(lanes):
                    O[i] = requantize_expr(A[i], M[i], S[i], Q[0], Q[1], Q[2], out_dtype, rounding)

        return portable

    groups = lanes // 4

    def body(A: tirx.Buffer, M: tirx.Buffer, S: tirx.Buffer, Q: tirx.Buffer) -> Expr:
        parts = [_neon_group(ops, rounding, *(buf.vload([4 * g], "int32x4") for buf in (A, M, S)))
                 for g in range(groups)]
        return _narrow(ops, parts, Q, out_dtype, lanes)

    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((lanes,), "int32", offset_factor=1),
        M: T.Buffer((lanes,), "int32", offset_factor=1),
        S: T.Buffer((lanes,), "int32", offset_factor=1),
        Q: T.Buffer((3,), "int32", offset_factor=1),
        O: T.Buffer((lanes,), out_dtype, offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(A[0:lanes], S[0:lanes], M[0:lanes], Q[0:3])
            T.writes(O[0:lanes])
            O[T.ramp(0, 1, lanes)] = body(A, M, S, Q)

    return impl


# "<rounding>_right": for workloads whose shifts are all right shifts (`right_shifts`, any layer
# whose scale is below 1/2): same desc, an impl without the left shift and the split of the shift
# (SQRDMULH + SRSHL for "upward", SQDMULH + SRSHL for "single", the fixup between for "away").
RIGHT = "_right"
VARIANTS = (*ROUNDINGS, *(rounding + RIGHT for rounding in ROUNDINGS))
_TAGS = {"away": "", "upward": "_up", "single": "_single"}


def variant_tag(variant: str) -> str:
    """The name part of a variant: "" (away), "_up", "_single", each with "_right" or not."""
    base = variant.removesuffix(RIGHT)
    return _TAGS[base] + variant[len(base):]


def register_requantize(prefix: str, ops: RoundingOps | None, lanes_options=(4, 8, 16)) -> dict:
    """Register `<prefix>[_up|_single][_right]_<lanes>_i32<out>` for every lanes, output dtype and
    variant (none: TFLite's round half away, "_up": TFLite's kUpward, "_single": ruy's; "_right": for
    right shifts only); returns `{(lanes, out_dtype, variant): name}`."""
    from tvm.s_tir import TensorIntrin

    names = {}
    for variant in VARIANTS:
        rounding = variant.removesuffix(RIGHT)
        for lanes in lanes_options:
            for out_dtype in OUTPUT_DTYPES:
                short = "i8" if out_dtype == "int8" else "u8"
                name = f"{prefix}{variant_tag(variant)}_{lanes}_i32{short}"
                impl_rounding = variant if ops is not None else rounding
                TensorIntrin.register(name, requantize_desc(lanes, out_dtype, rounding),
                                      requantize_impl(lanes, out_dtype, impl_rounding, ops))
                names[(lanes, out_dtype, variant)] = name
    return names
