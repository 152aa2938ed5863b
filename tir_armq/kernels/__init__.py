"""The kernel table: every kernel tir_armq builds, named after what it computes.

Conv variants, in order of preference (a model build takes the first that applies to a layer):

| variant            | computes                                 | applies when                            |
|--------------------|------------------------------------------|-----------------------------------------|
| `dwconv_int8_mla8` | depthwise, 8-bit products in tap pairs   | int8, weights in [-127, 127], zp 0      |
| `dwconv_int16`     | depthwise, zero points subtracted, int16 | every depthwise layer                   |
| `conv_c8`          | 1x1 conv / FC, XNNPACK's c8 GEMM step    | as above; 1x1, unpadded, K % 8 == 0     |
| `conv_c8_im2col`   | KxK conv: packed patches, the c8 step    | as above; KH * KW > 1                   |
| `conv_c2`          | 1x1 conv / FC, output channels in lanes  | as above, K % 4 == 0; first for K <= 384|
| `conv_int16_lane`  | dense conv, by-element int16 MAC         | every dense conv                        |

Each is a `ConvKernel` (`base.py`): `applies(spec, weight)`, `prepare(spec, weight, bias,
requantize)` (the constants folded at build time), `build(spec)` (the PrimFunc: shapes, dtypes and
epilogue form only) and `rule`, a dlight `ScheduleRule` honouring `tunable`. The epilogue of every
conv kernel is the layer's: int32 accumulators, TFLite's requantize, or the requantize and a
residual ADD (`kernel_name` spells it). The other ops have one kernel each (`OpKernel`): `vadd_q8`,
`gavgpool_q8`, `requantize_q8`, `softmax_q8`. The model rewrite, tuning, the benchmark, the demo and the tests
iterate this table; a new variant is one entry here and its rule.
"""

from __future__ import annotations

import numpy as np
from tvm import s_tir, tirx
from tvm.target import Target

from ..schedules import GavgpoolQ8, RequantizeQ8, SoftmaxQ8, VaddQ8
from ..workloads import add, mean, requantize, softmax
from ..workloads.spec import QuantConvSpec
from .base import ConvKernel, OpKernel, Operands, with_shift_promise
from .conv_c2 import ConvC2Kernel
from .conv_c8 import ConvC8Kernel
from .conv_c8_im2col import ConvC8Im2colKernel
from .conv_int16_lane import ConvInt16LaneKernel
from .dwconv_int8_mla8 import DwconvInt8Mla8Kernel
from .dwconv_int16 import DwconvInt16Kernel

DWCONV_INT8_MLA8 = DwconvInt8Mla8Kernel()
DWCONV_INT16 = DwconvInt16Kernel()
CONV_C2 = ConvC2Kernel()
CONV_C8 = ConvC8Kernel()
CONV_C8_IM2COL = ConvC8Im2colKernel()
CONV_INT16_LANE = ConvInt16LaneKernel()
CONV_KERNELS: tuple[ConvKernel, ...] = (DWCONV_INT8_MLA8, DWCONV_INT16, CONV_C8, CONV_C2, CONV_C8_IM2COL,
                                        CONV_INT16_LANE)

_NEON_REQUANTIZE = {"aarch64": "SQRDMULH/SQDMULH + SRSHL", "armv7": "VQRDMULH/VQDMULH + VRSHL"}
VADD_Q8 = OpKernel(add.NAME, "TFLite's 8-bit ADD (its NEON form; the scalar tail of size % 16)",
                   _NEON_REQUANTIZE, VaddQ8(), add.add_nhwc)
GAVGPOOL_Q8 = OpKernel(mean.NAME, "TFLite's MEAN over H and W, requantized", _NEON_REQUANTIZE, GavgpoolQ8(),
                       mean.mean_spatial_nhwc)
REQUANTIZE_Q8 = OpKernel(requantize.NAME, "TFLite's requantize of int32 accumulators", _NEON_REQUANTIZE,
                         RequantizeQ8(), requantize.requantize_nhwc)
SOFTMAX_Q8 = OpKernel(softmax.NAME, "TFLite's 8-bit SOFTMAX (its AArch64 table form), requantized",
                      {"aarch64": "table loads, SQRDMULH + SRSHL", "armv7": "table loads, VQRDMULH + VRSHL"},
                      SoftmaxQ8(), softmax.softmax_rows)
KERNELS: tuple[ConvKernel | OpKernel, ...] = (*CONV_KERNELS, VADD_Q8, GAVGPOOL_Q8, REQUANTIZE_Q8, SOFTMAX_Q8)


def by_name(name: str) -> ConvKernel | OpKernel:
    """The kernel variant called `name`."""
    for kernel in KERNELS:
        if kernel.name == name:
            return kernel
    raise ValueError(f"kernel: no variant {name!r}; known: {', '.join(k.name for k in KERNELS)}")


def variant_of(func: tirx.PrimFunc) -> ConvKernel | OpKernel | None:
    """The variant whose PrimFunc `func` is (its `tir_armq.kernel` attribute), None for others."""
    name = func.attrs.get("tir_armq.kernel") if func.attrs is not None else None
    return next((kernel for kernel in KERNELS if kernel.name == name), None)


def applicable(spec: QuantConvSpec, weight: np.ndarray | None = None) -> list[ConvKernel]:
    """The conv variants that compute `spec` exactly, in order of preference."""
    return [kernel for kernel in CONV_KERNELS if kernel.applies(spec, weight)]


# conv_c2 before conv_c8 up to this many input channels (every MobileNet pointwise layer below K = 512).
# A72 estimate, as built (int8 out), conv_c8's best (shipped record, else fixed) -> conv_c2 fixed,
# cycles/MAC (scripts/compare_variants.py): K = 8: 48x48x8->48 0.330 -> 0.266, 24x24x8->48 0.349 ->
# 0.284; K = 16: 112x112x16->96 0.192 -> 0.195, 12x12x16->96 0.334 -> 0.220; K = 24: 56x56x24->144
# 0.172 -> 0.172; K = 32: 28x28x32->192 0.179 -> 0.162, 112x112x32->16 0.170 -> 0.175, 112x112x32->64
# 0.157 -> 0.174; K = 64..384: 56x56x96->24 0.186 -> 0.138, 14x14x96->576 0.186 -> 0.138,
# 56x56x144->24 0.166 -> 0.134, 7x7x160->960 0.162 -> 0.143, 56x56x64->128 0.149 -> 0.154; K >= 512:
# 7x7x960->160 0.133 -> 0.144, 7x7x576->160 0.137 -> 0.145, 7x7x1024->1024 0.132 -> 0.136. conv_c8
# pays its lane sums (ADDP) per 8-channel x 1-pixel tile, conv_c2 none; at K >= 512 both inner loops
# run at the SMULL/SMLAL limit and conv_c2's one-pixel tile of an odd row (7x7: 32 weight loads per
# two LD1R) loses.
C2_MAX_INPUT_CHANNELS = 384


def select(spec: QuantConvSpec, weight: np.ndarray | None = None) -> ConvKernel:
    """The variant a model build runs `spec` on: the first that applies, except conv_c2 before
    conv_c8 for K <= `C2_MAX_INPUT_CHANNELS` (no lane sum per tile: see the numbers above)."""
    kernels = applicable(spec, weight)
    if CONV_C2 in kernels and spec.data_shape[3] <= C2_MAX_INPUT_CHANNELS:
        return CONV_C2
    return kernels[0]


def kernel_name(spec: QuantConvSpec, variant: ConvKernel) -> str:
    """The global symbol, tuning task name, test id and benchmark row of `variant` on `spec`."""
    return variant.kernel_name(spec)


def _rule_of(func: tirx.PrimFunc):
    kernel = variant_of(func)
    if kernel is None:
        name = func.attrs.get("global_symbol") if func.attrs is not None else None
        raise ValueError(f"func: no kernel variant of tir_armq builds {name or 'this PrimFunc'} "
                         "(no `tir_armq.kernel` attribute): no schedule rule for it")
    return kernel.rule


def fixed_schedule(func: tirx.PrimFunc, target: Target) -> s_tir.Schedule:
    """The variant's one fixed schedule (`tunable=False`): what a build uses without a record."""
    sch = _rule_of(func).apply(func, target, False)
    if sch is None:
        raise ValueError(f"func: {variant_of(func).name}'s rule declines {func.attrs.get('global_symbol')}")
    return sch


def design_spaces(func: tirx.PrimFunc, target: Target) -> list[s_tir.Schedule]:
    """The variant's design spaces (`tunable=True`), what MetaSchedule explores."""
    spaces = _rule_of(func).apply(func, target, True)
    if spaces is None:
        raise ValueError(f"func: {variant_of(func).name}'s rule declines {func.attrs.get('global_symbol')}")
    return spaces if isinstance(spaces, list) else [spaces]


def space_size(func: tirx.PrimFunc) -> int | None:
    """The number of distinct candidates of a small search space, None for one too large to count."""
    rule = _rule_of(func)
    return rule.space_size(func) if hasattr(rule, "space_size") else None


__all__ = ["CONV_C2", "CONV_C8", "CONV_C8_IM2COL", "CONV_INT16_LANE", "CONV_KERNELS", "ConvKernel", "DWCONV_INT16",
           "DWCONV_INT8_MLA8", "GAVGPOOL_Q8", "KERNELS", "OpKernel", "Operands", "REQUANTIZE_Q8", "VADD_Q8", "applicable",
           "by_name", "design_spaces", "fixed_schedule", "kernel_name", "select", "space_size", "variant_of",
           "with_shift_promise"]
