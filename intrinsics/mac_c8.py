"""The "c8" MAC intrinsics of the `conv_c8` and `conv_c8_im2col` kernels (`tir_armq.workloads.conv_c8`).

One output pixel, 8 output channels, K = 16 (or 8) consecutive input channels of int8:

    C[n, j] += sum_{h, e} int32(A[8 h + 2 j + e]) * int32(B[n, 0, 0, 8 h + 2 j + e])   n < 8, j < 4

which is what the NEON sequence leaves in lane j of output channel n's int32x4 accumulator:

    p  = smull(A[0:8], B[n, 0:8])            SMULL .8h, .8b, .8b    / VMULL.S8
    p += smull(A[8:16], B[n, 8:16])          SMLAL .8h, .8b, .8b    / VMLAL.S8   (K = 16 only)
    C[n] += p[2j] + p[2j + 1]                SADALP .4s, .8h        / VPADAL.S16

Two products fit in int16 because the int8 scheme's weights lie in [-127, 127]. That is 8 products
per multiply instruction, the A72's SIMD multiply limit that XNNPACK's 2x8c8 GEMM also sits at.
The lane sum `O[n] += sum_j C[n, j]` (ADDP x 6 for 8 channels) closes each pixel's tile.
The two-pixel step (2x8x16) is XNNPACK's 2x8c8 inner loop: one weight row, both pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tvm import tirx
from tvm.ir import Expr
from tvm.script import tirx as T

K_STEPS = (16, 8)
OC_TILE, LANES = 8, 4
PAIR = 2  # pixels of the two-pixel step


@dataclass(frozen=True)
class C8Ops:
    """An ISA's primitives: int8x8 x int8x8 -> int16x8, int32x4 + pairwise sums of int16x8, and the
    pairwise sums of two int32x4 (ADDP: [a0+a1, a2+a3, b0+b1, b2+b3])."""

    widening_mul: Callable[[Expr, Expr], Expr]
    pairwise_accumulate: Callable[[Expr, Expr], Expr]
    pairwise_add: Callable[[Expr, Expr], Expr]


def pairwise_add_shuffles(a: Expr, b: Expr) -> Expr:
    """ADDP of two int32x4 as even + odd lanes of their concatenation."""
    return tirx.Shuffle([a, b], [0, 2, 4, 6]) + tirx.Shuffle([a, b], [1, 3, 5, 7])


def lane_sum_desc(sources: int) -> tirx.PrimFunc:
    """`O[n] += sum_j C[n, j]` (or `C1[n, j] + C2[n, j]`: the 16-wide steps' and the tail's
    accumulators): the 4 lanes of 8 accumulators into 8 output channels."""
    if sources == 1:

        @T.prim_func(s_tir=True)
        def desc1(
            C: T.Buffer((OC_TILE, LANES), "int32", offset_factor=1),
            O: T.Buffer((OC_TILE,), "int32", offset_factor=1),
        ) -> None:
            with T.sblock("root"):
                T.reads(O[0:OC_TILE], C[0:OC_TILE, 0:LANES])
                T.writes(O[0:OC_TILE])
                for n, j in T.grid(OC_TILE, LANES):
                    with T.sblock("update"):
                        vn, vj = T.axis.remap("SR", [n, j])
                        O[vn] = O[vn] + C[vn, vj]

        return desc1

    @T.prim_func(s_tir=True)
    def desc2(
        C: T.Buffer((OC_TILE, LANES), "int32", offset_factor=1),
        D: T.Buffer((OC_TILE, LANES), "int32", offset_factor=1),
        O: T.Buffer((OC_TILE,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(O[0:OC_TILE], C[0:OC_TILE, 0:LANES], D[0:OC_TILE, 0:LANES])
            T.writes(O[0:OC_TILE])
            for n, j in T.grid(OC_TILE, LANES):
                with T.sblock("update"):
                    vn, vj = T.axis.remap("SR", [n, j])
                    O[vn] = O[vn] + (C[vn, vj] + D[vn, vj])

    return desc2


def lane_sum_impl(sources: int, ops: C8Ops) -> tirx.PrimFunc:
    """Three levels of ADDP: 6 instructions for 8 channels (plus 8 adds for two sources)."""

    def sums(buffers, half: int) -> Expr:
        rows = []
        for n in range(4):
            parts = [buf.vload([4 * half + n, 0], "int32x4") for buf in buffers]
            rows.append(parts[0] if len(parts) == 1 else parts[0] + parts[1])
        return ops.pairwise_add(ops.pairwise_add(rows[0], rows[1]), ops.pairwise_add(rows[2], rows[3]))

    if sources == 1:

        @T.prim_func(s_tir=True)
        def impl1(
            C: T.Buffer((OC_TILE, LANES), "int32", offset_factor=1),
            O: T.Buffer((OC_TILE,), "int32", offset_factor=1),
        ) -> None:
            with T.sblock("root"):
                T.reads(O[0:OC_TILE], C[0:OC_TILE, 0:LANES])
                T.writes(O[0:OC_TILE])
                O[T.ramp(0, 1, 4)] = O.vload([0], "int32x4") + sums([C], 0)
                O[T.ramp(4, 1, 4)] = O.vload([4], "int32x4") + sums([C], 1)

        return impl1

    @T.prim_func(s_tir=True)
    def impl2(
        C: T.Buffer((OC_TILE, LANES), "int32", offset_factor=1),
        D: T.Buffer((OC_TILE, LANES), "int32", offset_factor=1),
        O: T.Buffer((OC_TILE,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(O[0:OC_TILE], C[0:OC_TILE, 0:LANES], D[0:OC_TILE, 0:LANES])
            T.writes(O[0:OC_TILE])
            O[T.ramp(0, 1, 4)] = O.vload([0], "int32x4") + sums([C, D], 0)
            O[T.ramp(4, 1, 4)] = O.vload([4], "int32x4") + sums([C, D], 1)

    return impl2


def c8_desc(k: int) -> tirx.PrimFunc:
    """B is the weights where the model stores them (OHWI, one output channel's row K apart)."""
    if k == 16:

        @T.prim_func(s_tir=True)
        def desc16(a: T.handle, b: T.handle, c: T.handle) -> None:
            row, kh_stride, kw_stride = T.int32(), T.int32(), T.int32()
            A = T.match_buffer(a, (16,), "int8", offset_factor=1)
            B = T.match_buffer(b, (OC_TILE, 1, 1, 16), "int8", strides=[row, kh_stride, kw_stride, 1], offset_factor=1)
            C = T.match_buffer(c, (OC_TILE, LANES), "int32", offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:OC_TILE, 0:LANES], A[0:16], B[0:OC_TILE, 0, 0, 0:16])
                T.writes(C[0:OC_TILE, 0:LANES])
                for n, j, h, e in T.grid(OC_TILE, LANES, 2, 2):
                    with T.sblock("update"):
                        vn, vj, vh, ve = T.axis.remap("SSRR", [n, j, h, e])
                        C[vn, vj] = C[vn, vj] + T.Cast("int32", A[vh * 8 + vj * 2 + ve]) * T.Cast(
                            "int32", B[vn, 0, 0, vh * 8 + vj * 2 + ve])

        return desc16
    if k == 8:

        @T.prim_func(s_tir=True)
        def desc8(a: T.handle, b: T.handle, c: T.handle) -> None:
            row, kh_stride, kw_stride = T.int32(), T.int32(), T.int32()
            A = T.match_buffer(a, (8,), "int8", offset_factor=1)
            B = T.match_buffer(b, (OC_TILE, 1, 1, 8), "int8", strides=[row, kh_stride, kw_stride, 1], offset_factor=1)
            C = T.match_buffer(c, (OC_TILE, LANES), "int32", offset_factor=1)
            with T.sblock("root"):
                T.reads(C[0:OC_TILE, 0:LANES], A[0:8], B[0:OC_TILE, 0, 0, 0:8])
                T.writes(C[0:OC_TILE, 0:LANES])
                for n, j, e in T.grid(OC_TILE, LANES, 2):
                    with T.sblock("update"):
                        vn, vj, ve = T.axis.remap("SSR", [n, j, e])
                        C[vn, vj] = C[vn, vj] + T.Cast("int32", A[vj * 2 + ve]) * T.Cast("int32", B[vn, 0, 0, vj * 2 + ve])

        return desc8
    raise ValueError(f"k: c8 intrinsics take 16 or 8 input channels, got {k}")


def c8_impl(k: int, ops: C8Ops) -> tirx.PrimFunc:
    def products(A: tirx.Buffer, B: tirx.Buffer, n) -> Expr:
        p = ops.widening_mul(A.vload([0], "int8x8"), B.vload([n, 0, 0, 0], "int8x8"))
        if k == 16:  # LLVM folds the add of the second product into SMLAL / VMLAL
            p = p + ops.widening_mul(A.vload([8], "int8x8"), B.vload([n, 0, 0, 8], "int8x8"))
        return p

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        row, kh_stride, kw_stride = T.int32(), T.int32(), T.int32()
        A = T.match_buffer(a, (k,), "int8", offset_factor=1)
        B = T.match_buffer(b, (OC_TILE, 1, 1, k), "int8", strides=[row, kh_stride, kw_stride, 1], offset_factor=1)
        C = T.match_buffer(c, (OC_TILE, LANES), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:OC_TILE, 0:LANES], A[0:k], B[0:OC_TILE, 0, 0, 0:k])
            T.writes(C[0:OC_TILE, 0:LANES])
            for n in T.unroll(OC_TILE):
                C[n, T.ramp(0, 1, LANES)] = ops.pairwise_accumulate(C.vload([n, 0], "int32x4"), products(A, B, n))

    return impl


def c8_pair_desc() -> tirx.PrimFunc:
    """Two pixels' 16-channel step (A's rows, a symbolic stride apart) against the same 8 weight rows."""

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        pixel, row, kh_stride, kw_stride = T.int32(), T.int32(), T.int32(), T.int32()
        c_pixel, c_row = T.int32(), T.int32()
        A = T.match_buffer(a, (PAIR, 16), "int8", strides=[pixel, 1], offset_factor=1)
        B = T.match_buffer(b, (OC_TILE, 1, 1, 16), "int8", strides=[row, kh_stride, kw_stride, 1],
                           offset_factor=1)
        C = T.match_buffer(c, (PAIR, OC_TILE, LANES), "int32", strides=[c_pixel, c_row, 1], offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:PAIR, 0:OC_TILE, 0:LANES], A[0:PAIR, 0:16], B[0:OC_TILE, 0, 0, 0:16])
            T.writes(C[0:PAIR, 0:OC_TILE, 0:LANES])
            for p, n, j, h, e in T.grid(PAIR, OC_TILE, LANES, 2, 2):
                with T.sblock("update"):
                    vp, vn, vj, vh, ve = T.axis.remap("SSSRR", [p, n, j, h, e])
                    C[vp, vn, vj] = C[vp, vn, vj] + T.Cast("int32", A[vp, vh * 8 + vj * 2 + ve]) * T.Cast(
                        "int32", B[vn, 0, 0, vh * 8 + vj * 2 + ve])

    return desc


def c8_pair_impl(ops: C8Ops) -> tirx.PrimFunc:
    """XNNPACK's 2x8c8 order: each channel's two weight vectors loaded once and used for both
    pixels right away (one channel at a time keeps 16 accumulators + 8 operands in registers; the
    same two 1-pixel steps in a row keep all 16 weight vectors live, and LLVM spills)."""

    def products(A: tirx.Buffer, B: tirx.Buffer, p: int, n) -> Expr:
        return (ops.widening_mul(A.vload([p, 0], "int8x8"), B.vload([n, 0, 0, 0], "int8x8"))
                + ops.widening_mul(A.vload([p, 8], "int8x8"), B.vload([n, 0, 0, 8], "int8x8")))

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        pixel, row, kh_stride, kw_stride = T.int32(), T.int32(), T.int32(), T.int32()
        c_pixel, c_row = T.int32(), T.int32()
        A = T.match_buffer(a, (PAIR, 16), "int8", strides=[pixel, 1], offset_factor=1)
        B = T.match_buffer(b, (OC_TILE, 1, 1, 16), "int8", strides=[row, kh_stride, kw_stride, 1],
                           offset_factor=1)
        C = T.match_buffer(c, (PAIR, OC_TILE, LANES), "int32", strides=[c_pixel, c_row, 1], offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:PAIR, 0:OC_TILE, 0:LANES], A[0:PAIR, 0:16], B[0:OC_TILE, 0, 0, 0:16])
            T.writes(C[0:PAIR, 0:OC_TILE, 0:LANES])
            for n in T.unroll(OC_TILE):
                C[0, n, T.ramp(0, 1, LANES)] = ops.pairwise_accumulate(C.vload([0, n, 0], "int32x4"),
                                                                       products(A, B, 0, n))
                C[1, n, T.ramp(0, 1, LANES)] = ops.pairwise_accumulate(C.vload([1, n, 0], "int32x4"),
                                                                       products(A, B, 1, n))

    return impl


def register_c8(prefix: str, ops: C8Ops, lane_sum_name: str) -> dict:
    """Register `<prefix>_1x8x{16,8}_i8i8i32` and `<prefix>_2x8x16_i8i8i32` (pixels x output
    channels x input channels) and the lane sums `<lane_sum_name>` and `<lane_sum_name>_2` (two
    accumulators); returns `{16: name, 8: name, ("pair", 16): name, ("lane_sum", 1): name,
    ("lane_sum", 2): name}`."""
    from tvm.s_tir import TensorIntrin

    names = {}
    for k in K_STEPS:
        name = f"{prefix}_1x{OC_TILE}x{k}_i8i8i32"
        TensorIntrin.register(name, c8_desc(k), c8_impl(k, ops))
        names[k] = name
    name = f"{prefix}_{PAIR}x{OC_TILE}x16_i8i8i32"
    TensorIntrin.register(name, c8_pair_desc(), c8_pair_impl(ops))
    names[("pair", 16)] = name
    for sources in (1, 2):
        name = lane_sum_name if sources == 1 else f"{lane_sum_name}_2"
        TensorIntrin.register(name, lane_sum_desc(sources), lane_sum_impl(sources, ops))
        names[("lane_sum", sources)] = name
    return names
