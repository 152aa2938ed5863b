"""NHWC depthwise convolution of int8/uint8 tensors into int32, as a TensorIR PrimFunc.

Stages (the seed's structure):
  data_pad[n, y, x, c]                 input padded with its zero point
  data_vec[n, oh, ow, kh, kw, c]       int16(data_pad[n, oh*sh + kh*dh, ow*sw + kw*dw, c]) - zp_data
  weight_vec[c, m, kh, kw]             int16(weight[0, kh, kw, c*M + m]) - zp_weight[c*M + m]
  conv[n, oh, ow, c, m]                sum_{kh, kw} int32(data_vec) * int32(weight_vec)
  output[n, oh, ow, c*M + m]           conv + bias
`data_vec` is the windowed view of the input, so `conv` is a pure einsum of two int16 buffers:
schedules choose its layout (the seed's `(N, OH, OW, C//VC, KH, KW, VC)`) and whether it is
materialised; weights are taken in TFLite's `(1, KH, KW, C*M)` layout and `weight_vec` is where
a schedule puts them into `(C//VC, M, KH, KW, VC)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from tvm import te, tirx

from . import params as P
from .spec import QuantConvSpec, validated_fields
from .stages import add_bias, epilogue_args, pad_data, placeholders, to_prim_func, widen_data, widen_weight

OP_NAME = "depthwise_conv2d_nhwc"


@dataclass(frozen=True)
class DepthwiseConv2DSpec(QuantConvSpec):
    """A validated depthwise layer; `multiplier` is TFLite's depth multiplier M."""

    op_name: ClassVar[str] = OP_NAME
    multiplier: int = 1

    @property
    def out_channels(self) -> int:
        return self.data_shape[3] * self.multiplier

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (1, *self.kernel, self.out_channels)

    def prim_func(self, path: str = "int16") -> tirx.PrimFunc:
        """The PrimFunc of one multiply path: "int16" (the seed's: subtract zero points, widen,
        SMLAL) for every dtype, or "int8" (zero point folded into the bias, 8-bit products) for
        TFLite's int8 scheme; both compute the same integers."""
        if path == "int16":
            return _build(self)
        if path == "int8":
            from .depthwise_int8 import build_int8

            return build_int8(self)
        raise ValueError(f"path: expected 'int16' or 'int8', got {path!r}")


def depthwise_spec(
    data_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
    padding: P.PaddingArg = "VALID",
    data_dtype: str = "int8",
    weight_dtype: str = "int8",
    data_zero_point: int = 0,
    weight_zero_point: int | Sequence[int] = 0,
    output_dtype: str = "int32",
    rounding: str = "away",
) -> DepthwiseConv2DSpec:
    """Validate a depthwise layer given as TFLite describes it (weights `(1, KH, KW, C*M)`)."""
    data_shape = P.check_positive_ints("data_shape", data_shape, 4)
    weight_shape = P.check_positive_ints("weight_shape", weight_shape, 4)
    channels = data_shape[3]
    if weight_shape[0] != 1:
        raise ValueError(f"weight_shape: TFLite depthwise weights are (1, KH, KW, C*M), got {weight_shape}")
    if weight_shape[3] % channels:
        raise ValueError(
            f"weight_shape: the last axis ({weight_shape[3]}) must be a multiple of the input "
            f"channels ({channels}): C*M with M the depth multiplier"
        )
    fields = validated_fields(
        data_shape, weight_shape[1:3], weight_shape[3], stride=stride, dilation=dilation,
        padding=padding, data_dtype=data_dtype, weight_dtype=weight_dtype,
        data_zero_point=data_zero_point, weight_zero_point=weight_zero_point, output_dtype=output_dtype,
        rounding=rounding,
    )
    return DepthwiseConv2DSpec(**fields, multiplier=weight_shape[3] // channels)


def depthwise_conv2d_nhwc(data_shape: Sequence[int], weight_shape: Sequence[int], **kwargs) -> tirx.PrimFunc:
    """PrimFunc `(data, weight, bias[, weight_zero_point][, multiplier, shift, offset_clamp], output)`;
    see `depthwise_spec` for kwargs."""
    return depthwise_spec(data_shape, weight_shape, **kwargs).prim_func()


def _build(spec: DepthwiseConv2DSpec) -> tirx.PrimFunc:
    n, _, _, channels = spec.data_shape
    kh_, kw_ = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh_, ow_ = spec.out_hw
    mult = spec.multiplier

    data, weight, bias, weight_zp = placeholders(spec)
    data_pad = pad_data(spec, data)
    data_vec = te.compute(
        (n, oh_, ow_, kh_, kw_, channels),
        lambda b, y, x, i, j, c: widen_data(spec, data_pad[b, y * sh + i * dh, x * sw + j * dw, c]),
        name="data_vec",
    )
    weight_vec = te.compute(
        (channels, mult, kh_, kw_),
        lambda c, m, i, j: widen_weight(weight_zp, spec, weight[0, i, j, c * mult + m], c * mult + m),
        name="weight_vec",
    )
    ki = te.reduce_axis((0, kh_), name="kh")
    kj = te.reduce_axis((0, kw_), name="kw")
    conv = te.compute(
        (n, oh_, ow_, channels, mult),
        lambda b, y, x, c, m: te.sum(
            data_vec[b, y, x, ki, kj, c].astype("int32") * weight_vec[c, m, ki, kj].astype("int32"),
            axis=[ki, kj],
        ),
        name="conv",
    )
    output = add_bias(spec, lambda b, y, x, oc: conv[b, y, x, oc // mult, oc % mult], bias)
    args = [data, weight, bias] + ([weight_zp] if weight_zp is not None else []) + epilogue_args(spec, output)
    return to_prim_func(spec, OP_NAME, args).with_attr("tir_armq.path", "int16")
