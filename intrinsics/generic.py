"""Portable implementations of the MAC intrinsics (plain vector casts), for the host.

Same names' shapes and semantics as the NEON modules, so the very schedules that tensorize with
SMLAL/VMLAL on a board also build and run on an x86 host, where tests check them fastest.
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
from .requantize import register_requantize

MAC_4_I16I16I32 = "generic_mac_4_i16i16i32"
MAC_8_I16I16I32 = "generic_mac_8_i16i16i32"
MAC_LANE_4X8_I16I16I32 = "generic_mac_lane_4x8_i16i16i32"


def mul_4(a: Expr, b: Expr) -> Expr:
    return T.Cast("int32x4", a) * T.Cast("int32x4", b)


TensorIntrin.register(MAC_4_I16I16I32, mac_desc(4), mac_impl(4, mul_4))
TensorIntrin.register(MAC_8_I16I16I32, mac_desc(8), mac_impl(8, mul_4))
TensorIntrin.register(MAC_LANE_4X8_I16I16I32, mac_lane_desc(4, 8), mac_lane_impl(4, 8, mul_4))

MAC = {4: MAC_4_I16I16I32, 8: MAC_8_I16I16I32}
MAC_LANE = {(4, 8): MAC_LANE_4X8_I16I16I32}
# The desc's int64 expression on vectors: exact, and what the NEON forms are checked against.
REQUANTIZE = register_requantize("generic_requantize", None)
QUANTIZED_ADD = register_quantized_add("generic_qadd", None)


def _pairwise_accumulate(acc: Expr, p: Expr) -> Expr:
    wide = T.Cast("int32x8", p)
    return acc + tirx.Shuffle([wide], [0, 2, 4, 6]) + tirx.Shuffle([wide], [1, 3, 5, 7])


C8_OPS = C8Ops(widening_mul=lambda a, b: T.Cast("int16x8", a) * T.Cast("int16x8", b),
               pairwise_accumulate=_pairwise_accumulate, pairwise_add=pairwise_add_shuffles)
MAC_C8 = register_c8("generic_mac_c8", C8_OPS, "generic_lane_sum_8x4_i32")
MAC_C2 = register_c2("generic_mac_c2", C8_OPS)  # the c2 step: the c8 step's products and pairwise sums
