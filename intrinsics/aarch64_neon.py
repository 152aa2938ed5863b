"""AArch64 NEON MAC intrinsics: int16 x int16 -> int32 widening multiply-accumulate.

| name                                    | computes                        | lowers to              |
|-----------------------------------------|---------------------------------|------------------------|
| aarch64_neon_smlal_4h_i16i16i32         | 4 lanes, C += A * B             | SMLAL .4s, .4h, .4h    |
| aarch64_neon_smlal2_8h_i16i16i32        | 8 lanes, C += A * B             | SMLAL + SMLAL2 (.8h)   |
| aarch64_neon_smlal_lane_4x8_i16i16i32   | C[8] += sum_k A[k] * B[k, 0:8]  | 8 x SMLAL/SMLAL2 .h[k] |
| aarch64_neon_requantize[_up|_single]_{4,8,16}_i32{i8,u8} | TFLite requantize, clamp    | SQRDMULH, SRSHL, XTN   |
| aarch64_neon_qadd_{4,8,16}_{i8,u8}      | TFLite 8-bit ADD                | SQRDMULH, SRSHL, XTN   |
| aarch64_neon_smull_sadalp_1x8x{16,8}_i8i8i32 | c8: C[8, 4] += 8-bit products of K=16/8 | SMULL, SMLAL .8b, SADALP |
| aarch64_neon_ld1r_smull_sadalp_1x8x4_i8i8i32 | c2: C[8] += K=4 (2 pairs) x 8 | LD1R, SMULL/SMLAL, SADALP |
| aarch64_neon_addp_8x4_i32               | O[8] += lane sums of C[8, 4]    | 6 x ADDP               |
LLVM folds `acc + smull(a, b)` into SMLAL and selects SMLAL2 when both operands are high halves
of 128-bit registers; the by-element form comes from the lane splat of a loaded int16x4.
"""

from __future__ import annotations

from tvm import tirx
from tvm.ir import Expr
from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from .common import mac_desc, mac_impl, mac_lane_desc, mac_lane_impl
from .mac_c2 import register_c2
from .mac_c8 import C8Ops, register_c8
from .quantized_add import register_quantized_add
from .requantize import RoundingOps, register_requantize

SMLAL_4H_I16I16I32 = "aarch64_neon_smlal_4h_i16i16i32"
SMLAL2_8H_I16I16I32 = "aarch64_neon_smlal2_8h_i16i16i32"
SMLAL_LANE_4X8_I16I16I32 = "aarch64_neon_smlal_lane_4x8_i16i16i32"


def smull_4s(a: Expr, b: Expr) -> Expr:
    return T.call_llvm_pure_intrin("int32x4", "llvm.aarch64.neon.smull.v4i32", a, b)


def _int32x4(name: str):
    return lambda a, b: T.call_llvm_pure_intrin("int32x4", f"llvm.aarch64.neon.{name}.v4i32", a, b)


ROUNDING_OPS = RoundingOps(
    doubling_high_mul=_int32x4("sqrdmulh"), saturating_add=_int32x4("sqadd"), rounding_shift=_int32x4("srshl"),
    doubling_high_mul_truncating=_int32x4("sqdmulh"), saturating_shift_left=_int32x4("sqshl"),
    narrow_16=lambda v: T.call_llvm_pure_intrin("int16x4", "llvm.aarch64.neon.sqxtn.v4i16", v),
    saturating_add_16=lambda a, b: T.call_llvm_pure_intrin("int16x8", "llvm.aarch64.neon.sqadd.v8i16", a, b),
    narrow_8=lambda v, dtype: T.call_llvm_pure_intrin(
        f"{dtype}x8", f"llvm.aarch64.neon.{'sqxtn' if dtype == 'int8' else 'sqxtun'}.v8i8", v),
)


TensorIntrin.register(SMLAL_4H_I16I16I32, mac_desc(4), mac_impl(4, smull_4s))
TensorIntrin.register(SMLAL2_8H_I16I16I32, mac_desc(8), mac_impl(8, smull_4s))
TensorIntrin.register(SMLAL_LANE_4X8_I16I16I32, mac_lane_desc(4, 8), mac_lane_impl(4, 8, smull_4s))

# What a schedule asks for, by shape: elementwise MAC of `lanes`, by-element MAC of (k, lanes).
MAC = {4: SMLAL_4H_I16I16I32, 8: SMLAL2_8H_I16I16I32}
MAC_LANE = {(4, 8): SMLAL_LANE_4X8_I16I16I32}
REQUANTIZE = register_requantize("aarch64_neon_requantize", ROUNDING_OPS)
QUANTIZED_ADD = register_quantized_add("aarch64_neon_qadd", ROUNDING_OPS)
C8_OPS = C8Ops(
    widening_mul=lambda a, b: T.call_llvm_pure_intrin("int16x8", "llvm.aarch64.neon.smull.v8i16", a, b),
    # acc + saddlp(p): LLVM selects SADALP.
    pairwise_accumulate=lambda acc, p: acc + T.call_llvm_pure_intrin("int32x4", "llvm.aarch64.neon.saddlp.v4i32.v8i16", p),
    pairwise_add=lambda a, b: T.call_llvm_pure_intrin("int32x4", "llvm.aarch64.neon.addp.v4i32", a, b),
)
MAC_C8 = register_c8("aarch64_neon_smull_sadalp", C8_OPS, "aarch64_neon_addp_8x4_i32")
MAC_C2 = register_c2("aarch64_neon_ld1r_smull_sadalp", C8_OPS)  # the c2 step: the c8 step's products and pairwise sums
