"""NHWC dense convolution (KxK and 1x1 pointwise) of int8/uint8 tensors into int32.

Stages:
  data_pad[n, y, x, ic]                  input padded with its zero point
  data_vec[n, oh, ow, kh, kw, ic]        int16(data_pad[n, oh*sh + kh*dh, ow*sw + kw*dw, ic]) - zp_data
  weight_vec[oc, kh, kw, ic]             int16(weight[oc, kh, kw, ic]) - zp_weight[oc]
  conv[n, oh, ow, oc]                    sum_{kh, kw, ic} int32(data_vec) * int32(weight_vec)
  output[n, oh, ow, oc]                  conv + bias
  [requantize[n, oh, ow, oc]]            TFLite's requantize to int8/uint8
  [residual_add[n, oh, ow, oc]]          TFLite's ADD of requantize and the `residual` input
Weights are OHWI, as TFLite stores them; `weight_vec` is where schedules re-layout them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from tvm import te, tirx

from . import params as P
from .add import has_tail
from .spec import QuantConvSpec, validated_fields
from .stages import add_bias, epilogue_args, pad_data, placeholders, to_prim_func, widen_data, widen_weight

OP_NAME = "conv2d_nhwc"


@dataclass(frozen=True)
class Conv2DSpec(QuantConvSpec):
    """A validated dense conv layer with `out_channels` OHWI filters."""

    op_name: ClassVar[str] = OP_NAME
    channels_out: int = 1
    residual: bool = False  # the conv's requantized output goes through an ADD with a second input

    @property
    def out_channels(self) -> int:
        return self.channels_out

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.channels_out, *self.kernel, self.data_shape[3])

    @property
    def macs(self) -> int:
        n, oh, ow, oc = self.out_shape
        return n * oh * ow * oc * self.kernel[0] * self.kernel[1] * self.data_shape[3]

    def prim_func(self, path: str = "int16") -> tirx.PrimFunc:
        """The PrimFunc of one multiply path: "int16" (the seed's: subtract zero points, widen,
        by-element SMLAL) for every layer, or "c8" (zero point folded into the bias, 8-bit products
        of 8 consecutive input channels, XNNPACK's GEMM form) for TFLite's int8 pointwise layers;
        both compute the same integers."""
        if path == "int16":
            return _build(self)
        if path == "c8":
            from .conv_c8 import build_c8

            return build_c8(self)
        raise ValueError(f"path: expected 'int16' or 'c8', got {path!r}")


def conv_spec(
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
    residual: bool = False,
) -> Conv2DSpec:
    """Validate a dense conv layer given as TFLite describes it (weights OHWI). `residual`: fuse
    the ADD of MobileNetV2's residual blocks (TFLite's NEON form, so only for outputs without the
    kernel's scalar tail, size % 16 == 0) into the requantizing epilogue."""
    data_shape = P.check_positive_ints("data_shape", data_shape, 4)
    weight_shape = P.check_positive_ints("weight_shape", weight_shape, 4)
    if weight_shape[3] != data_shape[3]:
        raise ValueError(
            f"weight_shape: OHWI weights need I = input channels ({data_shape[3]}), got {weight_shape}"
        )
    fields = validated_fields(
        data_shape, weight_shape[1:3], weight_shape[0], stride=stride, dilation=dilation,
        padding=padding, data_dtype=data_dtype, weight_dtype=weight_dtype,
        data_zero_point=data_zero_point, weight_zero_point=weight_zero_point, output_dtype=output_dtype,
        rounding=rounding,
    )
    spec = Conv2DSpec(**fields, channels_out=weight_shape[0], residual=bool(residual))
    if spec.residual and not spec.requantizes:
        raise ValueError("residual: a fused residual add needs a requantizing workload (output_dtype int8/uint8)")
    if spec.residual and has_tail(spec.out_shape):
        raise ValueError(f"residual: the output {spec.out_shape} has a scalar tail in TFLite's ADD (size % 16 != 0); "
                         "run the ADD on its own")
    return spec


def conv2d_nhwc(data_shape: Sequence[int], weight_shape: Sequence[int], **kwargs) -> tirx.PrimFunc:
    """PrimFunc `(data, weight, bias[, weight_zero_point][, multiplier, shift, offset_clamp]
    [, residual, add_params], output)`; see `conv_spec` for kwargs."""
    return conv_spec(data_shape, weight_shape, **kwargs).prim_func()


def _build(spec: Conv2DSpec) -> tirx.PrimFunc:
    n, _, _, cin = spec.data_shape
    kh_, kw_ = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh_, ow_ = spec.out_hw

    data, weight, bias, weight_zp = placeholders(spec)
    data_pad = pad_data(spec, data)
    data_vec = te.compute(
        (n, oh_, ow_, kh_, kw_, cin),
        lambda b, y, x, i, j, c: widen_data(spec, data_pad[b, y * sh + i * dh, x * sw + j * dw, c]),
        name="data_vec",
    )
    weight_vec = te.compute(
        (spec.out_channels, kh_, kw_, cin),
        lambda o, i, j, c: widen_weight(weight_zp, spec, weight[o, i, j, c], o),
        name="weight_vec",
    )
    ki = te.reduce_axis((0, kh_), name="kh")
    kj = te.reduce_axis((0, kw_), name="kw")
    kc = te.reduce_axis((0, cin), name="ic")
    conv = te.compute(
        (n, oh_, ow_, spec.out_channels),
        lambda b, y, x, o: te.sum(
            data_vec[b, y, x, ki, kj, kc].astype("int32") * weight_vec[o, ki, kj, kc].astype("int32"),
            axis=[ki, kj, kc],
        ),
        name="conv",
    )
    output = add_bias(spec, lambda b, y, x, o: conv[b, y, x, o], bias)
    args = [data, weight, bias] + ([weight_zp] if weight_zp is not None else []) + epilogue_args(spec, output)
    return to_prim_func(spec, OP_NAME, args)
