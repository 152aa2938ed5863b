"""The quantized convolution layer description shared by the depthwise and the dense layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..requantize import ROUNDINGS, RequantizeParams
from .add import AddParams
from . import params as P
from .params import Padding


@dataclass(frozen=True)
class QuantConvSpec:
    """Fields common to both layers; built only through the validating functions `depthwise_spec`
    and `conv_spec`.

    Shapes, dtypes, stride, padding, dilation, the output dtype and the epilogue's form (rounding,
    right shifts only, a fused residual ADD) make the workload: they decide a kernel's PrimFunc.
    The zero points are the layer's quantization, like the requantize and ADD parameters: they
    reach a kernel as arguments or as constants folded at build time (`tir_armq.kernels`), never
    as part of a PrimFunc's body, so that one tuned record serves every model with the layer.
    `weight_zero_point` is an int (per tensor) or a tuple with one value per output channel.
    `output_dtype` "int32" gives the accumulators (+ bias); "int8"/"uint8" fuses TFLite's
    requantize into the epilogue (multiplier, shift, offset_clamp; see `tir_armq.requantize`).
    """

    data_shape: tuple[int, int, int, int]  # N, H, W, C
    kernel: tuple[int, int]  # KH, KW
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Padding
    data_dtype: str
    weight_dtype: str
    data_zero_point: int
    weight_zero_point: int | tuple[int, ...]
    output_dtype: str = "int32"
    rounding: str = "away"  # of the requantize epilogue's final shift (tir_armq.requantize)
    # Every requantize shift is a right shift (< 0), as in every conv whose scale is below 1/2: the
    # arguments are checked against it, and the "single" epilogue then needs no left-shift form.
    right_shifts: bool = False

    kind: ClassVar[str]  # "depthwise" or "conv"
    residual: ClassVar[bool] = False  # a fused residual ADD epilogue (dense conv only)

    @property
    def out_channels(self) -> int:
        raise NotImplementedError

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        raise NotImplementedError

    @property
    def out_hw(self) -> tuple[int, int]:
        _, h, w, _ = self.data_shape
        p = self.padding
        return (
            P.output_size(h, p.top, p.bottom, self.kernel[0], self.stride[0], self.dilation[0], "height"),
            P.output_size(w, p.left, p.right, self.kernel[1], self.stride[1], self.dilation[1], "width"),
        )

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.data_shape[0], *self.out_hw, self.out_channels)

    @property
    def requantizes(self) -> bool:
        return self.output_dtype != "int32"

    @property
    def per_channel_weight_zp(self) -> bool:
        return isinstance(self.weight_zero_point, tuple)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one call (padding taps included, as XNNPACK counts them)."""
        n, oh, ow, oc = self.out_shape
        return n * oh * ow * oc * self.kernel[0] * self.kernel[1] * self._macs_per_tap

    _macs_per_tap = 1

    def weight_zero_points(self) -> np.ndarray:
        """The weight zero point of every output channel, as int32."""
        return np.broadcast_to(
            np.asarray(self.weight_zero_point, dtype=np.int32), (self.out_channels,)
        ).copy()

    def check_inputs(self, data: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                     requantize: RequantizeParams | None = None, residual: np.ndarray | None = None,
                     add: AddParams | None = None) -> None:
        """Refuse arrays that are not this layer's, naming the argument: `requantize` is required
        exactly when the layer requantizes, `residual` (the other input of the ADD, shaped as the
        output) and `add` exactly when it fuses a residual add."""
        checks = (
            ("data", data, self.data_shape, self.data_dtype),
            ("weight", weight, self.weight_shape, self.weight_dtype),
            ("bias", bias, (self.out_channels,), "int32"),
        )
        for name, arr, shape, dtype in checks:
            if arr.shape != tuple(shape):
                raise ValueError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}")
            if arr.dtype != np.dtype(dtype):
                raise TypeError(f"{name}: expected dtype {dtype}, got {arr.dtype}")
        if self.requantizes:
            if requantize is None:
                raise ValueError(f"requantize: this workload outputs {self.output_dtype}; pass its RequantizeParams")
            params = requantize.broadcast(self.out_channels)
            if params.output_dtype != self.output_dtype:
                raise TypeError(f"requantize: parameters for {params.output_dtype}, workload outputs {self.output_dtype}")
            if params.rounding != self.rounding:
                raise ValueError(f"requantize: parameters round {params.rounding!r}, the workload {self.rounding!r}")
            if self.right_shifts and (params.shift >= 0).any():
                raise ValueError("requantize: the workload was built for right shifts only (right_shifts=True), "
                                 f"the parameters have shifts up to {int(params.shift.max())}")
        elif requantize is not None:
            raise ValueError("requantize: this workload outputs int32 accumulators; build it with output_dtype int8/uint8")
        if self.residual:
            if residual is None or add is None:
                raise ValueError("residual, add: this workload fuses a residual add; pass its other input and AddParams")
            if residual.shape != self.out_shape or residual.dtype != np.dtype(self.output_dtype):
                raise ValueError(f"residual: expected {self.out_shape} {self.output_dtype}, got {residual.shape} "
                                 f"{residual.dtype}")
        elif residual is not None or add is not None:
            raise ValueError("residual, add: this workload has no residual add; build it with residual=True")


def validated_fields(
    data_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    out_channels: int,
    *,
    stride: int | Sequence[int],
    dilation: int | Sequence[int],
    padding: P.PaddingArg,
    data_dtype: str,
    weight_dtype: str,
    data_zero_point: int,
    weight_zero_point: int | Sequence[int],
    output_dtype: str = "int32",
    rounding: str = "away",
) -> dict[str, Any]:
    """The fields every QuantConvSpec has, checked; shapes are checked by the op's own builder."""
    stride = P.pair("stride", stride)
    dilation = P.pair("dilation", dilation)
    data_dtype = P.check_dtype("data_dtype", data_dtype)
    weight_dtype = P.check_dtype("weight_dtype", weight_dtype)
    pad = P.resolve_padding(padding, data_shape[1:3], kernel, stride, dilation)
    # Rejects a (dilated) kernel larger than the padded input, naming the axis.
    P.output_size(data_shape[1], pad.top, pad.bottom, kernel[0], stride[0], dilation[0], "height")
    P.output_size(data_shape[2], pad.left, pad.right, kernel[1], stride[1], dilation[1], "width")
    return dict(
        data_shape=data_shape,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        padding=pad,
        data_dtype=data_dtype,
        weight_dtype=weight_dtype,
        data_zero_point=P.check_zero_point("data_zero_point", data_zero_point, data_dtype),
        weight_zero_point=P.check_weight_zero_point(
            "weight_zero_point", weight_zero_point, weight_dtype, out_channels
        ),
        output_dtype=P.check_output_dtype("output_dtype", output_dtype),
        rounding=P.check_choice("rounding", rounding, ROUNDINGS),
    )
