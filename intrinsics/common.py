"""What the MAC intrinsics compute, independent of ISA: the `desc` half of each desc/impl pair.

Two shapes cover the seed's kernels:
- elementwise `C[i] += int32(A[i]) * int32(B[i])` over `lanes` (depthwise: one tap, VC channels);
- by-element `C[j] += sum_k int32(A[k]) * int32(B[k, j])` (dense conv: K input channels broadcast
  against `lanes` output channels, the GEMM-like inner loop).
Both read int16 operands (zero points already subtracted) and accumulate into int32 without an
init: schedules decompose the reduction first, so the intrinsic is the update alone.
"""

from __future__ import annotations

from collections.abc import Callable

from tvm import tirx
from tvm.ir import Expr
from tvm.script import tirx as T

# Signature of an ISA's widening multiply: (int16xN, int16xN) -> int32xN, N = 4.
WideningMul = Callable[[Expr, Expr], Expr]


def mac_desc(lanes: int) -> tirx.PrimFunc:
    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((lanes,), "int16", offset_factor=1),
        B: T.Buffer((lanes,), "int16", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:lanes], B[0:lanes])
            T.writes(C[0:lanes])
            for i in T.serial(lanes):
                with T.sblock("update"):
                    vi = T.axis.remap("S", [i])
                    C[vi] = C[vi] + T.Cast("int32", A[vi]) * T.Cast("int32", B[vi])

    return desc


def mac_impl(lanes: int, mul4: WideningMul) -> tirx.PrimFunc:
    """4 lanes: one widening MAC. 8 lanes: the low halves, then the high halves (SMLAL + SMLAL2 on
    AArch64, where LLVM folds the add and picks the `2` form for high-half operands)."""
    if lanes == 4:

        @T.prim_func(s_tir=True)
        def impl4(
            A: T.Buffer((4,), "int16", offset_factor=1),
            B: T.Buffer((4,), "int16", offset_factor=1),
            C: T.Buffer((4,), "int32", offset_factor=1),
        ) -> None:
            with T.sblock("root"):
                T.reads(C[0:4], A[0:4], B[0:4])
                T.writes(C[0:4])
                C[T.ramp(0, 1, 4)] = C.vload([0], "int32x4") + mul4(
                    A.vload([0], "int16x4"), B.vload([0], "int16x4")
                )

        return impl4
    if lanes == 8:

        @T.prim_func(s_tir=True)
        def impl8(
            A: T.Buffer((8,), "int16", offset_factor=1),
            B: T.Buffer((8,), "int16", offset_factor=1),
            C: T.Buffer((8,), "int32", offset_factor=1),
        ) -> None:
            with T.sblock("root"):
                T.reads(C[0:8], A[0:8], B[0:8])
                T.writes(C[0:8])
                a = T.meta_var(A.vload([0], "int16x8"))
                b = T.meta_var(B.vload([0], "int16x8"))
                C[T.ramp(0, 1, 4)] = C.vload([0], "int32x4") + mul4(
                    T.vectorlow("int16x4", a), T.vectorlow("int16x4", b)
                )
                C[T.ramp(4, 1, 4)] = C.vload([4], "int32x4") + mul4(
                    T.vectorhigh("int16x4", a), T.vectorhigh("int16x4", b)
                )

        return impl8
    raise ValueError(f"lanes: elementwise MAC intrinsics have 4 or 8 lanes, got {lanes}")


def mac_lane_desc(k: int, lanes: int) -> tirx.PrimFunc:
    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((k,), "int16", offset_factor=1),
        B: T.Buffer((k, lanes), "int16", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:k], B[0:k, 0:lanes])
            T.writes(C[0:lanes])
            for j, r in T.grid(lanes, k):
                with T.sblock("update"):
                    vj, vr = T.axis.remap("SR", [j, r])
                    C[vj] = C[vj] + T.Cast("int32", A[vr]) * T.Cast("int32", B[vr, vj])

    return desc


def mac_lane_impl(k: int, lanes: int, mul4: WideningMul) -> tirx.PrimFunc:
    """`k` = 4 input channels in one int16x4 load, each lane broadcast (by-element MAC) against
    `lanes` = 8 output channels: 2 x 4 widening MACs per input channel."""
    if (k, lanes) != (4, 8):
        raise ValueError(f"k, lanes: the by-element MAC intrinsic is 4 x 8, got {k} x {lanes}")

    def step(a: Expr, B: tirx.Buffer, acc: Expr, r: int, high: bool) -> Expr:
        row = B.vload([r, 0], "int16x8")
        half = T.vectorhigh("int16x4", row) if high else T.vectorlow("int16x4", row)
        return acc + mul4(half, tirx.Shuffle([a], [r] * 4))

    def accumulate(A: tirx.Buffer, B: tirx.Buffer, C: tirx.Buffer, high: bool) -> Expr:
        a = A.vload([0], "int16x4")
        acc = C.vload([4 if high else 0], "int32x4")
        for r in range(k):
            acc = step(a, B, acc, r, high)
        return acc

    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((4,), "int16", offset_factor=1),
        B: T.Buffer((4, 8), "int16", offset_factor=1),
        C: T.Buffer((8,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:8], A[0:4], B[0:4, 0:8])
            T.writes(C[0:8])
            C[T.ramp(0, 1, 4)] = accumulate(A, B, C, False)
            C[T.ramp(4, 1, 4)] = accumulate(A, B, C, True)

    return impl
