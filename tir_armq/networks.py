"""The layers of MobileNetV2-1.0-224 and MobileNetV1-1.0-224: the one table every benchmark,
tuning run and demo takes its shapes from.

The tables are generated from each network's block definition (as in the papers), so a layer
count or a stride lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import ConvKernel, select, with_shift_promise
from .requantize import TFLITE_ROUNDING, RequantizeParams
from .workloads import QuantConvSpec, conv_spec, depthwise_spec


@dataclass(frozen=True)
class Layer:
    """A conv or depthwise layer at batch 1, NHWC, TF SAME padding."""

    kind: str  # "depthwise" or "conv"
    hw: int  # input height = width
    cin: int
    cout: int
    kernel: int
    stride: int

    @property
    def name(self) -> str:
        k, s = f"{self.kernel}x{self.kernel}", f"s{self.stride}"
        if self.kind == "depthwise":
            return f"dw{k}_{s}_{self.hw}x{self.hw}x{self.cin}"
        return f"conv{k}_{s}_{self.hw}x{self.hw}x{self.cin}_to_{self.cout}"

    def spec(self, data_zero_point: int = -3, output_dtype: str = "int32", rounding: str = "away") -> QuantConvSpec:
        """TFLite's int8 scheme: int8 data with a zero point, symmetric per-channel int8 weights; the
        int32 accumulators, or (`output_dtype` int8) the requantize epilogue fused."""
        common = dict(stride=self.stride, padding="SAME", data_zero_point=data_zero_point,
                      output_dtype=output_dtype, rounding=rounding)
        if self.kind == "depthwise":
            return depthwise_spec((1, self.hw, self.hw, self.cin), (1, self.kernel, self.kernel, self.cout), **common)
        return conv_spec((1, self.hw, self.hw, self.cin), (self.cout, self.kernel, self.kernel, self.cin), **common)


    def random_inputs(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """data, weight, bias as TFLite's int8 scheme allows them: full-range int8 data, weights in
        [-127, 127] (the contract of the int8 scheme's variants), int32 bias."""
        spec = self.spec()
        rng = np.random.default_rng(seed)
        data = rng.integers(-128, 127, size=spec.data_shape, endpoint=True, dtype=np.int8)
        weight = rng.integers(-127, 127, size=spec.weight_shape, endpoint=True, dtype=np.int8)
        bias = rng.integers(-(1 << 16), 1 << 16, size=spec.out_channels, dtype=np.int32)
        return data, weight, bias

    def as_built_spec(self, seed: int = 0) -> tuple[QuantConvSpec, tuple]:
        """The layer as a model build runs it (int8 output, the requantize fused with the rounding
        of TFLite's kernel for the op, the shift form its scales give) and its inputs: (spec,
        (data, weight, bias, requantize)), the requantize that of a typical layer (outputs spread
        over the int8 range)."""
        spec = self.spec(output_dtype="int8", rounding=TFLITE_ROUNDING[self.kind])
        data, weight, bias = self.random_inputs(seed)
        weight_scales = np.full(spec.out_channels, 0.004, np.float32)
        requantize = RequantizeParams.from_scales(0.02, weight_scales, 0.1, -5, (-128, 127), "int8", spec.rounding)
        return with_shift_promise(spec, requantize), (data, weight, bias, requantize)

    def as_built(self, seed: int = 0) -> tuple[QuantConvSpec, ConvKernel, list[np.ndarray]]:
        """(spec, kernel, arguments): the layer as a model build runs it (`as_built_spec`) on the
        kernel variant a build selects, and that kernel's arguments."""
        spec, inputs = self.as_built_spec(seed)
        kernel = select(spec, inputs[1])
        return spec, kernel, kernel.arguments(spec, *inputs)


# (expansion t, output channels c, repeats n, first stride s), from the MobileNetV2 paper.
_MNV2_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
# (output channels of the pointwise conv, stride of the depthwise), from the MobileNetV1 paper.
_MNV1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


def _mobilenet_v2() -> list[Layer]:
    layers = [Layer("conv", 224, 3, 32, 3, 2)]
    hw, cin = 112, 32
    for t, c, n, s in _MNV2_BLOCKS:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            if t != 1:
                layers.append(Layer("conv", hw, cin, hidden, 1, 1))
            layers.append(Layer("depthwise", hw, hidden, hidden, 3, stride))
            hw = -(-hw // stride)
            layers.append(Layer("conv", hw, hidden, c, 1, 1))
            cin = c
    layers.append(Layer("conv", hw, cin, 1280, 1, 1))
    return layers


def _mobilenet_v1() -> list[Layer]:
    layers = [Layer("conv", 224, 3, 32, 3, 2)]
    hw, cin = 112, 32
    for cout, stride in _MNV1_BLOCKS:
        layers.append(Layer("depthwise", hw, cin, cin, 3, stride))
        hw = -(-hw // stride)
        layers.append(Layer("conv", hw, cin, cout, 1, 1))
        cin = cout
    return layers


NETWORKS: dict[str, list[Layer]] = {"mobilenet_v2": _mobilenet_v2(), "mobilenet_v1": _mobilenet_v1()}


def network_layers(name: str) -> list[Layer]:
    """Every conv/depthwise layer of a network, in order (repeats included)."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"network: unknown network {name!r}; known: {sorted(NETWORKS)}") from None


def distinct_layers(name: str, kind: str | None = None) -> list[tuple[Layer, int]]:
    """Each distinct layer once, with how many times the network runs it, in first-seen order."""
    counts: dict[Layer, int] = {}
    for layer in network_layers(name):
        if kind is None or layer.kind == kind:
            counts[layer] = counts.get(layer, 0) + 1
    return list(counts.items())
