"""Quantized add intrinsics: two int8/uint8 vectors -> one, TFLite's `AddElementwise` arithmetic.

`desc`: `O[i] = add(X1[i], X2[i])` with the 11 int32 parameters of `tir_armq.workloads.add.AddParams`
in `P` (the NEON form, one expression in `tir_armq.workloads.add.add_expr`). `impl`: per group of 4
lanes, TFLite's NEON sequence

    a  = sqrdmulh((x1 + offset1) << 20 >> -shift1, multiplier1)      SHL, SSHL, SQRDMULH
    b  = likewise for x2
    s  = sqrdmulh(a + b, out_multiplier)                               ADD, SQRDMULH
    s  = rounding_divide_by_pot(s, -out_shift)                         AND, SSHR, SQADD, SRSHL
    o  = clamp(int16(s) + out_offset)                                  XTN, ADD .8h, SMAX/SMIN, XTN

in 32-bit lanes only. It serves the standalone ADD and the residual add fused into a conv's epilogue.
"""

from __future__ import annotations

from tvm import tirx
from tvm.ir import Expr
from tvm.script import tirx as T

from ..workloads.add import LEFT_SHIFT, PARAM_NAMES, add_expr
from ..workloads.params import dtype_range

from .requantize import RoundingOps

DTYPES = ("int8", "uint8")
N_PARAMS = len(PARAM_NAMES)


def add_desc(lanes: int, dtype: str) -> tirx.PrimFunc:
    @T.prim_func(s_tir=True)
    def desc(
        X1: T.Buffer((lanes,), dtype, offset_factor=1),
        X2: T.Buffer((lanes,), dtype, offset_factor=1),
        P: T.Buffer((N_PARAMS,), "int32", offset_factor=1),
        O: T.Buffer((lanes,), dtype, offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            # In the order the expression first reads them: tensorize pairs reads by position.
            T.reads(X1[0:lanes], P[0:N_PARAMS], X2[0:lanes])
            T.writes(O[0:lanes])
            for i in T.serial(lanes):
                with T.sblock("add"):
                    vi = T.axis.remap("S", [i])
                    O[vi] = add_expr(X1[vi], X2[vi], [P[k] for k in range(N_PARAMS)], dtype)

    return desc


def _neon_group(ops: RoundingOps, x1: Expr, x2: Expr, p: dict[str, Expr]) -> Expr:
    """Lanes 4g..4g+3 up to the rounding divide, int32x4."""
    left = T.Broadcast(T.int32(LEFT_SHIFT), 4)

    def scaled(x: Expr, k: int) -> Expr:
        v = T.Cast("int32x4", x) + p[f"offset{k}"]
        return ops.doubling_high_mul(T.shift_right(T.shift_left(v, left), p[f"right{k}"]), p[f"multiplier{k}"])

    s = ops.doubling_high_mul(scaled(x1, 1) + scaled(x2, 2), p["out_multiplier"])
    # RoundingDivideByPOT as gemmlowp's NEON form: a fixup turns SRSHL's half-up into half-away.
    shift = p["out_shift"]
    s = ops.saturating_add(s, T.shift_right(T.bitwise_and(s, shift), T.Broadcast(T.int32(31), 4)))
    return ops.rounding_shift(s, shift)


def add_impl(lanes: int, dtype: str, ops: RoundingOps | None) -> tirx.PrimFunc:
    """`ops` None: the portable form, the desc's int64 expression lane by lane."""
    if lanes % 4:
        raise ValueError(f"lanes: quantized add intrinsics work on groups of 4 lanes, got {lanes}")
    if ops is None:

        @T.prim_func(s_tir=True)
        def portable(
            X1: T.Buffer((lanes,), dtype, offset_factor=1),
            X2: T.Buffer((lanes,), dtype, offset_factor=1),
            P: T.Buffer((N_PARAMS,), "int32", offset_factor=1),
            O: T.Buffer((lanes,), dtype, offset_factor=1),
        ) -> None:
            with T.sblock("root"):
                T.reads(X1[0:lanes], P[0:N_PARAMS], X2[0:lanes])
                T.writes(O[0:lanes])
                for i in T.serial(lanes):
                    O[i] = add_expr(X1[i], X2[i], [P[k] for k in range(N_PARAMS)], dtype)

        return portable

    lo, hi = dtype_range(dtype)

    def body(X1: tirx.Buffer, X2: tirx.Buffer, P: tirx.Buffer) -> Expr:
        param = {name: P[k] for k, name in enumerate(PARAM_NAMES)}
        p = {name: T.Broadcast(param[name], 4) for name in ("offset1", "multiplier1", "offset2", "multiplier2",
                                                            "out_multiplier", "out_shift")}
        for k in (1, 2):
            p[f"right{k}"] = T.Broadcast(T.int32(0) - param[f"shift{k}"], 4)
        groups = [
            T.Cast("int16x4", _neon_group(ops, X1.vload([4 * g], f"{dtype}x4"), X2.vload([4 * g], f"{dtype}x4"), p))
            for g in range(lanes // 4)
        ]
        narrowed = groups[0] if len(groups) == 1 else tirx.Shuffle(groups, list(range(lanes)))
        # Wrapping int16 add of the zero point; the saturating narrow and the clamp are one clamp.
        s16 = narrowed + T.Broadcast(T.Cast("int16", param["out_offset"]), lanes)
        low = T.Cast("int16", T.max(param["clamp_low"], T.int32(lo)))
        high = T.Cast("int16", T.min(param["clamp_high"], T.int32(hi)))
        return T.Cast(f"{dtype}x{lanes}", T.max(T.min(s16, T.Broadcast(high, lanes)), T.Broadcast(low, lanes)))

    @T.prim_func(s_tir=True)
    def impl(
        X1: T.Buffer((lanes,), dtype, offset_factor=1),
        X2: T.Buffer((lanes,), dtype, offset_factor=1),
        P: T.Buffer((N_PARAMS,), "int32", offset_factor=1),
        O: T.Buffer((lanes,), dtype, offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(X1[0:lanes], P[0:N_PARAMS], X2[0:lanes])
            T.writes(O[0:lanes])
            O[T.ramp(0, 1, lanes)] = body(X1, X2, P)

    return impl


def register_quantized_add(prefix: str, ops: RoundingOps | None, lanes_options=(4, 8, 16)) -> dict:
    """Register `<prefix>_<lanes>_{i8,u8}`; returns `{(lanes, dtype): name}`."""
    from tvm.s_tir import TensorIntrin

    names = {}
    for lanes in lanes_options:
        for dtype in DTYPES:
            name = f"{prefix}_{lanes}_{'i8' if dtype == 'int8' else 'u8'}"
            TensorIntrin.register(name, add_desc(lanes, dtype), add_impl(lanes, dtype, ops))
            names[(lanes, dtype)] = name
    return names
