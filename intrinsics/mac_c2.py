"""The "c2" MAC intrinsic of the `conv_c2` kernel (`tir_armq.workloads.conv_c2`).

One output pixel, 8 output channels in the lanes, K = 4 consecutive input channels of int8 taken
as two pairs. The weights come paired at build time (`B[p, n, e]` = input channel 2p + e of output
channel n: a pair's two bytes adjacent, 8 channels in 16 bytes):

    C[n] += sum_{p, e} int32(A[2 p + e]) * int32(B[p, n, e])             n < 8, p < 2, e < 2

which is what the NEON sequence leaves in the int32x4 accumulators of channels 0-3 and 4-7:

    a_p = broadcast(int16(A[2p], A[2p+1]))       LD1R .4h              / VLD1.16 {d[]}
    q   = smull(a_0, B[0, 0:4, :])               SMULL .8h, .8b, .8b   / VMULL.S8
    q  += smull(a_1, B[1, 0:4, :])               SMLAL .8h, .8b, .8b   / VMLAL.S8
    C[0:4] += q[2n] + q[2n + 1]                  SADALP .4s, .8h       / VPADAL.S16
    (the same for channels 4-7 with B[p, 4:8, :])

Int16 lane 2n + e holds x[e] * w[n, e] + x[2 + e] * w[n, 2 + e]: two products, exact because the
int8 scheme's weights lie in [-127, 127] (|sum| <= 2 * 128 * 127 < 2**15). The broadcast pair
makes every lane's data operand right for its output channel, so the accumulators hold output
channels: no lane sum at the end (the c8 step's ADDP tree). Per 32 MACs: four multiplies on the
A72's one SIMD multiply pipe (F0, the limit: 0.125 cycles/MAC), two SADALP on F1, and the two
broadcasts (a load and a SIMD slot each, LLVM's A72 model), shared by every 8 channels of the
pixel's tile. XNNPACK's qs8 GEMM "c2" microkernels (`..._4x8c2__neon_mlal_ld1r`)
compute the same step. The products and pairwise sums are the c8 step's primitives (`C8Ops`).
The weights are loaded 8 bytes at a time: each half of a 16-byte load would be a high half
against the 8-byte broadcast, which LLVM extracts with EXT (a SIMD instruction per 8 channels)
instead of SMULL2.
"""

from __future__ import annotations

from tvm import tirx
from tvm.ir import Expr
from tvm.script import tirx as T

from .mac_c8 import C8Ops

K_STEP = 4  # input channels per intrinsic: two broadcast pairs
OC_TILE = 8  # output channels per intrinsic: two int32x4 accumulators
HALF = 4  # output channels per 8-byte weight load


def c2_desc() -> tirx.PrimFunc:
    """B is a block of the paired weights `(K / 2, OC, 2)`: rows of pairs `pair_stride` apart."""

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        pair_stride = T.int32()
        A = T.match_buffer(a, (K_STEP,), "int8", offset_factor=1)
        B = T.match_buffer(b, (2, OC_TILE, 2), "int8", strides=[pair_stride, 2, 1], offset_factor=1)
        C = T.match_buffer(c, (OC_TILE,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:OC_TILE], A[0:K_STEP], B[0:2, 0:OC_TILE, 0:2])
            T.writes(C[0:OC_TILE])
            for n, p, e in T.grid(OC_TILE, 2, 2):
                with T.sblock("update"):
                    vn, vp, ve = T.axis.remap("SRR", [n, p, e])
                    C[vn] = C[vn] + T.Cast("int32", A[vp * 2 + ve]) * T.Cast("int32", B[vp, vn, ve])

    return desc


def broadcast_pair(A: tirx.Buffer, offset: int) -> Expr:
    """`A[offset], A[offset + 1]` repeated over 8 bytes: one int16 load, splat (LD1R .4h)."""
    pair = T.reinterpret("int16", A.vload([offset], "int8x2"))
    return T.reinterpret("int8x8", T.broadcast(pair, 4))


def c2_impl(ops: C8Ops) -> tirx.PrimFunc:
    def half(A: tirx.Buffer, B: tirx.Buffer, C: tirx.Buffer, h: int) -> Expr:
        products = ops.widening_mul(broadcast_pair(A, 0), B.vload([0, HALF * h, 0], "int8x8"))
        # LLVM folds the add of the second pair's products into SMLAL / VMLAL
        products = products + ops.widening_mul(broadcast_pair(A, 2), B.vload([1, HALF * h, 0], "int8x8"))
        return ops.pairwise_accumulate(C.vload([HALF * h], "int32x4"), products)

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        pair_stride = T.int32()
        A = T.match_buffer(a, (K_STEP,), "int8", offset_factor=1)
        B = T.match_buffer(b, (2, OC_TILE, 2), "int8", strides=[pair_stride, 2, 1], offset_factor=1)
        C = T.match_buffer(c, (OC_TILE,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:OC_TILE], A[0:K_STEP], B[0:2, 0:OC_TILE, 0:2])
            T.writes(C[0:OC_TILE])
            C[T.ramp(0, 1, HALF)] = half(A, B, C, 0)
            C[T.ramp(HALF, 1, HALF)] = half(A, B, C, 1)

    return impl


def register_c2(prefix: str, ops: C8Ops) -> str:
    """Register `<prefix>_1x8x4_i8i8i32` (pixels x output channels x input channels); returns its name."""
    from tvm.s_tir import TensorIntrin

    name = f"{prefix}_1x{OC_TILE}x{K_STEP}_i8i8i32"
    TensorIntrin.register(name, c2_desc(), c2_impl(ops))
    return name
