"""The quantized convolution description shared by the depthwise and the dense workload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .params import Padding


@dataclass(frozen=True)
class QuantConvSpec:
    """Fields common to both workloads; built only through the validating workload functions.

    `weight_zero_point` is an int (per tensor) or a tuple with one value per output channel; a
    per-channel zero point becomes an extra int32 argument of the PrimFunc.
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

    op_name: ClassVar[str]  # the PrimFunc's global symbol, and the op its schedule rule accepts

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
        kh, kw = self.kernel
        (sh, sw), (dh, dw) = self.stride, self.dilation
        return (
            (h + p.top + p.bottom - (kh - 1) * dh - 1) // sh + 1,
            (w + p.left + p.right - (kw - 1) * dw - 1) // sw + 1,
        )

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.data_shape[0], *self.out_hw, self.out_channels)

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

    def arguments(self, data: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
        """The PrimFunc's arguments in order, the last one the zeroed int32 output."""
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
        args = [data, weight, bias]
        if self.per_channel_weight_zp:
            args.append(self.weight_zero_points())
        args.append(np.zeros(self.out_shape, dtype=np.int32))
        return args
