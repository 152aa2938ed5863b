"""ARMv7 NEON MAC intrinsics: int16 x int16 -> int32 widening multiply-accumulate.

| name                                    | computes                        | lowers to                  |
|-----------------------------------------|---------------------------------|----------------------------|
| armv7_neon_vmlal_s16_4_i16i16i32        | 4 lanes, C += A * B             | VMLAL.S16 q, d, d          |
| armv7_neon_vmlal_s16_8_i16i16i32        | 8 lanes, C += A * B             | 2 x VMLAL.S16 (d halves)   |
| armv7_neon_vmlal_lane_s16_4x8_i16i16i32 | C[8] += sum_k A[k] * B[k, 0:8]  | 8 x VMLAL.S16 q, d, d[k]   |
| armv7_neon_requantize[_up|_single]_{4,8,16}_i32{i8,u8} | TFLite requantize, clamp    | VQRDMULH, VRSHL, VMOVN     |
| armv7_neon_qadd_{4,8,16}_{i8,u8}        | TFLite 8-bit ADD                | VQRDMULH, VRSHL, VMOVN     |
| armv7_neon_vmull_vpadal_1x8x{16,8}_i8i8i32 | c8: C[8, 4] += 8-bit products | VMULL/VMLAL.S8, VPADAL.S16 |
| armv7_neon_vld1dup_vmull_vpadal_1x8x4_i8i8i32 | c2: C[8] += K=4 (2 pairs) x 8 | VLD1 {d[]}, VMLAL.S8, VPADAL |
"""

from __future__ import annotations

from tvm import tirx
from tvm.ir import Expr
from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from .common import mac_desc, mac_impl, mac_lane_desc, mac_lane_impl
from .mac_c2 import register_c2
from .mac_c8 import C8Ops, pairwise_add_shuffles, register_c8
from .quantized_add import register_quantized_add
from .requantize import RoundingOps, register_requantize

VMLAL_S16_4_I16I16I32 = "armv7_neon_vmlal_s16_4_i16i16i32"
VMLAL_S16_8_I16I16I32 = "armv7_neon_vmlal_s16_8_i16i16i32"
VMLAL_LANE_S16_4X8_I16I16I32 = "armv7_neon_vmlal_lane_s16_4x8_i16i16i32"


def vmull_s16(a: Expr, b: Expr) -> Expr:
    return T.call_llvm_pure_intrin("int32x4", "llvm.arm.neon.vmulls.v4i32", a, b)


def _int32x4(name: str):
    return lambda a, b: T.call_llvm_pure_intrin("int32x4", f"llvm.{name}.v4i32", a, b)


ROUNDING_OPS = RoundingOps(
    doubling_high_mul=_int32x4("arm.neon.vqrdmulh"), saturating_add=_int32x4("sadd.sat"),
    rounding_shift=_int32x4("arm.neon.vrshifts"), doubling_high_mul_truncating=_int32x4("arm.neon.vqdmulh"),
    saturating_shift_left=_int32x4("arm.neon.vqshifts"),
    narrow_16=lambda v: T.call_llvm_pure_intrin("int16x4", "llvm.arm.neon.vqmovns.v4i16", v),
    saturating_add_16=lambda a, b: T.call_llvm_pure_intrin("int16x8", "llvm.sadd.sat.v8i16", a, b),
    narrow_8=lambda v, dtype: T.call_llvm_pure_intrin(
        f"{dtype}x8", f"llvm.arm.neon.{'vqmovns' if dtype == 'int8' else 'vqmovnsu'}.v8i8", v),
)


TensorIntrin.register(VMLAL_S16_4_I16I16I32, mac_desc(4), mac_impl(4, vmull_s16))
TensorIntrin.register(VMLAL_S16_8_I16I16I32, mac_desc(8), mac_impl(8, vmull_s16))
TensorIntrin.register(VMLAL_LANE_S16_4X8_I16I16I32, mac_lane_desc(4, 8), mac_lane_impl(4, 8, vmull_s16))

MAC = {4: VMLAL_S16_4_I16I16I32, 8: VMLAL_S16_8_I16I16I32}
MAC_LANE = {(4, 8): VMLAL_LANE_S16_4X8_I16I16I32}
REQUANTIZE = register_requantize("armv7_neon_requantize", ROUNDING_OPS)
QUANTIZED_ADD = register_quantized_add("armv7_neon_qadd", ROUNDING_OPS)
C8_OPS = C8Ops(
    widening_mul=lambda a, b: T.call_llvm_pure_intrin("int16x8", "llvm.arm.neon.vmulls.v8i16", a, b),
    pairwise_accumulate=lambda acc, p: T.call_llvm_pure_intrin("int32x4", "llvm.arm.neon.vpadals.v4i32.v8i16", acc, p),
    pairwise_add=pairwise_add_shuffles,  # VPADD is 64-bit only: LLVM picks from the shuffles
)
MAC_C8 = register_c8("armv7_neon_vmull_vpadal", C8_OPS, "armv7_neon_lane_sum_8x4_i32")
MAC_C2 = register_c2("armv7_neon_vld1dup_vmull_vpadal", C8_OPS)  # the c2 step: the c8 step's products and pairwise sums
