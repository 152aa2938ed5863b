"""A depthwise layer as TFLite describes it (weights `(1, KH, KW, C*M)`), validated.

The PrimFuncs that compute it are the kernel variants' (`tir_armq.kernels`): `dwconv_int16.py`
(the seed's arithmetic, any dtypes) and `dwconv_int8_mla8.py` (TFLite's int8 scheme).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from . import params as P
from .spec import QuantConvSpec, validated_fields


@dataclass(frozen=True)
class DepthwiseConv2DSpec(QuantConvSpec):
    """A validated depthwise layer; `multiplier` is TFLite's depth multiplier M."""

    kind: ClassVar[str] = "depthwise"
    multiplier: int = 1

    @property
    def out_channels(self) -> int:
        return self.data_shape[3] * self.multiplier

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (1, *self.kernel, self.out_channels)


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
