"""What a kernel variant is: a named computation (XNNPACK names its microkernels after what they
compute; so do we), when it applies, how its constant operands are prepared at build time, its
PrimFunc, and its schedule rule."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
from tvm import tirx
from tvm.s_tir.dlight.base import ScheduleRule

from ..requantize import RequantizeParams
from ..workloads.add import AddParams
from ..workloads.naming import kernel_name as _kernel_name
from ..workloads.spec import QuantConvSpec


@dataclass(frozen=True)
class Operands:
    """A conv kernel's constant operands, prepared once when a model is built."""

    constants: tuple[np.ndarray, ...]  # the arguments after the data, before the epilogue's
    requantize: RequantizeParams | None  # one multiplier and shift per output channel of the kernel


class ConvKernel(ABC):
    """A variant of the quantized depthwise or dense conv. Subclasses fill in the class attributes
    and `applies`, `prepare` and `build`; the rest follows from them."""

    name: ClassVar[str]  # the PrimFuncs' `tir_armq.kernel`, the first word of every kernel name
    kind: ClassVar[str]  # the layer it computes: "depthwise" or "conv"
    computes: ClassVar[str]  # one line: the arithmetic
    applies_when: ClassVar[str]  # one line: the layers it takes
    isa_forms: ClassVar[dict[str, str]]  # ISA -> the multiply instructions of its inner loop
    mac_pattern: ClassVar[dict[str, str]]  # ISA -> a regex the tensorized assembly must match
    symmetric_weights: ClassVar[bool] = False  # int8 weights must lie in [-127, 127]
    rule: ClassVar[ScheduleRule]

    @abstractmethod
    def applies(self, spec: QuantConvSpec, weight: np.ndarray | None = None) -> bool:
        """The variant computes this layer exactly (given its weights, when they matter)."""

    @abstractmethod
    def prepare(self, spec: QuantConvSpec, weight: np.ndarray, bias: np.ndarray,
                requantize: RequantizeParams | None = None) -> Operands:
        """The layer's constants as the kernel takes them (zero points folded, weights laid out,
        channels padded to the tile)."""

    @abstractmethod
    def _build(self, spec: QuantConvSpec) -> tirx.PrimFunc: ...

    def kernel_spec(self, spec: QuantConvSpec) -> QuantConvSpec:
        """The layer the PrimFunc computes: `spec`, or `spec` with output channels padded to the
        variant's tile (the extra channels are sliced off after)."""
        return spec

    def build(self, spec: QuantConvSpec) -> tirx.PrimFunc:
        """The PrimFunc of this variant for the layer `spec` (its shapes, dtypes and epilogue form
        only: two layers that differ in quantization get structurally equal PrimFuncs)."""
        self._check(spec)
        return self._build(self.kernel_spec(spec))

    def kernel_name(self, spec: QuantConvSpec) -> str:
        """The PrimFunc's global symbol."""
        return _kernel_name(self.kernel_spec(spec), self.name)

    def arguments(self, spec: QuantConvSpec, data: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                  requantize: RequantizeParams | None = None, residual: np.ndarray | None = None,
                  add: AddParams | None = None) -> list[np.ndarray]:
        """The PrimFunc's arguments for these layer inputs, in order, the last the zeroed output."""
        spec.check_inputs(data, weight, bias, requantize, residual, add)
        self._check(spec, weight)
        operands = self.prepare(spec, weight, bias, requantize)
        kernel = self.kernel_spec(spec)
        args = [data, *operands.constants]
        if spec.requantizes:
            p = operands.requantize
            args += [p.multiplier.astype(np.int32), p.shift.astype(np.int32), p.offset_clamp()]
        if spec.residual:
            args += [residual, add.array()]
        args.append(np.zeros(kernel.out_shape, kernel.output_dtype))
        return args

    def _check(self, spec: QuantConvSpec, weight: np.ndarray | None = None) -> None:
        if not self.applies(spec, weight):
            raise ValueError(f"{self.name}: does not compute this layer (it takes {self.applies_when}): "
                             f"{spec}")

    def __repr__(self) -> str:
        return self.name


class OutputTileKernel(ConvKernel):
    """A variant whose accumulators hold `oc_tile` output channels: a layer with other output
    channels is built padded to the tile (zero weights and bias for the extra channels, sliced off
    after); one that fuses a residual input, whose channels are the layer's, must fit the tile."""

    oc_tile: ClassVar[int]

    def fits_tile(self, spec: QuantConvSpec) -> bool:
        return spec.out_channels % self.oc_tile == 0 or not spec.residual

    def kernel_spec(self, spec):
        padded = -(-spec.out_channels // self.oc_tile) * self.oc_tile
        if padded == spec.out_channels:
            return spec
        return replace(spec, channels_out=padded, weight_zero_point=0)

    def _padded_channels(self, spec, weight: np.ndarray, bias: np.ndarray,
                         requantize: RequantizeParams | None
                         ) -> tuple[tuple[np.ndarray, np.ndarray], RequantizeParams | None]:
        """((weight, bias), requantize) with the output channels padded to the kernel's tile: zero
        weights and bias for the extra channels (their outputs are sliced off), the first channel's
        requantize parameters."""
        channels = self.kernel_spec(spec).out_channels
        extra = channels - spec.out_channels
        if extra:
            weight = np.concatenate([weight, np.zeros((extra, *weight.shape[1:]), weight.dtype)])
            bias = np.concatenate([bias, np.zeros(extra, np.int32)])
        if requantize is not None:
            requantize = with_channels(per_channel(requantize, spec.out_channels), channels)
        return (weight, bias), requantize


def unpadded_pointwise(spec: QuantConvSpec) -> bool:
    """A 1x1 conv without padding (also what a FULLY_CONNECTED layer is built as)."""
    p = spec.padding
    return spec.kernel == (1, 1) and (p.top, p.bottom, p.left, p.right) == (0, 0, 0, 0)


@dataclass(frozen=True)
class OpKernel:
    """A kernel of another op (ADD, MEAN, the standalone requantize): one PrimFunc builder and its
    rule, no variants to choose between."""

    name: str
    computes: str
    isa_forms: dict[str, str]
    rule: ScheduleRule
    build: Callable[..., tirx.PrimFunc]

    def __repr__(self) -> str:
        return self.name


class ZeroPointKernel(ConvKernel):
    """A variant that subtracts the zero points itself: its constants are the layer's weights and
    bias as the model holds them, and both zero points as arguments."""

    def prepare(self, spec, weight, bias, requantize: RequantizeParams | None = None) -> Operands:
        return Operands((weight, bias, *zero_point_operands(spec)), per_channel(requantize, spec.out_channels))


def per_channel(requantize: RequantizeParams | None, channels: int) -> RequantizeParams | None:
    """The requantize parameters with one multiplier and shift per output channel (None stays None)."""
    return None if requantize is None else requantize.broadcast(channels)


def fold_data_zero_point(spec: QuantConvSpec, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """`bias - zx * sum_taps weight` per output channel: what 8-bit products of the raw data leave
    out of `sum (x - zx) * w` (exact where every padded tap holds zx)."""
    w = weight.astype(np.int64)
    sums = w.reshape(-1, spec.out_channels).sum(axis=0) if spec.kind == "depthwise" \
        else w.reshape(spec.out_channels, -1).sum(axis=1)
    return (bias.astype(np.int64) - spec.data_zero_point * sums).astype(np.int32)


def zero_point_operands(spec: QuantConvSpec) -> tuple[np.ndarray, np.ndarray]:
    """(weight zero point per output channel, data zero point) as the int16 kernels take them."""
    return spec.weight_zero_points(), np.array([spec.data_zero_point], np.int32)


def symmetric_int8(spec: QuantConvSpec, weight: np.ndarray | None) -> bool:
    """TFLite's int8 scheme: int8 data, int8 weights with zero point 0 in [-127, 127] (the scheme
    never produces -128; the 8-bit product identities rely on it)."""
    return (spec.data_dtype == "int8" and spec.weight_dtype == "int8" and not any(spec.weight_zero_points())
            and (weight is None or int(weight.min(initial=0)) >= -127))


def with_shift_promise(spec: QuantConvSpec, requantize: RequantizeParams) -> QuantConvSpec:
    """The epilogue built for right shifts only when every channel's is one, as in any layer whose
    scale is below 1/2: no left shift, no split of the shift (SQDMULH + SRSHL for ruy's single
    rounding, SQRDMULH + SRSHL for the depthwise kernels' round half up)."""
    if (np.asarray(requantize.shift) < 0).all():
        return replace(spec, right_shifts=True)
    return spec


def with_channels(params: RequantizeParams, channels: int) -> RequantizeParams:
    """Per-channel parameters padded (the first channel's repeated) to `channels`."""
    extra = channels - params.multiplier.size
    if extra <= 0:
        return params
    def padded(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values, np.repeat(values[:1], extra)])

    return replace(params, multiplier=padded(params.multiplier), shift=padded(params.shift))
