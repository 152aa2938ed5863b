"""A dense conv layer (KxK or 1x1) as TFLite describes it (weights OHWI), validated.

The PrimFuncs that compute it are the kernel variants' (`tir_armq.kernels`): `conv_int16_lane.py`
(the seed's arithmetic, any dtypes), `conv_c8.py` (TFLite's int8 pointwise layers) and
`conv_c8_im2col.py` (TFLite's int8 KxK layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from . import params as P
from .add import has_tail
from .spec import QuantConvSpec, validated_fields


@dataclass(frozen=True)
class Conv2DSpec(QuantConvSpec):
    """A validated dense conv layer with `out_channels` OHWI filters."""

    kind: ClassVar[str] = "conv"
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
