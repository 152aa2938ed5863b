"""ARMv7 NEON MAC intrinsics: int16 x int16 -> int32 widening multiply-accumulate.

| name                                    | computes                        | lowers to                  |
|-----------------------------------------|---------------------------------|----------------------------|
| armv7_neon_vmlal_s16_4_i16i16i32        | 4 lanes, C += A * B             | VMLAL.S16 q, d, d          |
| armv7_neon_vmlal_s16_8_i16i16i32        | 8 lanes, C += A * B             | 2 x VMLAL.S16 (d halves)   |
| armv7_neon_vmlal_lane_s16_4x8_i16i16i32 | C[8] += sum_k A[k] * B[k, 0:8]  | 8 x VMLAL.S16 q, d, d[k]   |
"""

from __future__ import annotations

from tvm import tirx
from tvm.ir import Expr
from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

from .common import mac_desc, mac_impl, mac_lane_desc, mac_lane_impl

VMLAL_S16_4_I16I16I32 = "armv7_neon_vmlal_s16_4_i16i16i32"
VMLAL_S16_8_I16I16I32 = "armv7_neon_vmlal_s16_8_i16i16i32"
VMLAL_LANE_S16_4X8_I16I16I32 = "armv7_neon_vmlal_lane_s16_4x8_i16i16i32"


def vmull_s16(a: Expr, b: Expr) -> Expr:
    return T.call_llvm_pure_intrin("int32x4", "llvm.arm.neon.vmulls.v4i32", a, b)


TensorIntrin.register(VMLAL_S16_4_I16I16I32, mac_desc(4), mac_impl(4, vmull_s16))
TensorIntrin.register(VMLAL_S16_8_I16I16I32, mac_desc(8), mac_impl(8, vmull_s16))
TensorIntrin.register(VMLAL_LANE_S16_4X8_I16I16I32, mac_lane_desc(4, 8), mac_lane_impl(4, 8, vmull_s16))

MAC = {4: VMLAL_S16_4_I16I16I32, 8: VMLAL_S16_8_I16I16I32}
MAC_LANE = {(4, 8): VMLAL_LANE_S16_4X8_I16I16I32}
