"""numpy reference of both workloads: exact integer semantics, int32 output.

Written from the definition (sum over taps of (x - zp_x) * (w - zp_w), plus bias), not from the
PrimFunc, so that it checks the stage structure rather than repeating it.
"""

from __future__ import annotations

import numpy as np

from .requantize import RequantizeParams
from .requantize import requantize as tflite_requantize
from .workloads.add import AddParams, add_reference
from .workloads.conv import Conv2DSpec
from .workloads.depthwise import DepthwiseConv2DSpec
from .workloads.spec import QuantConvSpec


def _padded_centered_data(spec: QuantConvSpec, data: np.ndarray) -> np.ndarray:
    p = spec.padding
    centered = data.astype(np.int64) - spec.data_zero_point
    # Padding with the zero point is padding the centered input with 0.
    return np.pad(centered, ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0)))


def _window(spec: QuantConvSpec, padded: np.ndarray, i: int, j: int) -> np.ndarray:
    """Input pixels under tap (i, j) for every output pixel: (N, OH, OW, C)."""
    oh, ow = spec.out_hw
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    y0, x0 = i * dh, j * dw
    return padded[:, y0 : y0 + (oh - 1) * sh + 1 : sh, x0 : x0 + (ow - 1) * sw + 1 : sw, :]


def depthwise_conv2d_nhwc(
    spec: DepthwiseConv2DSpec, data: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    """int32 output of a depthwise layer; weights in TFLite's (1, KH, KW, C*M) layout."""
    padded = _padded_centered_data(spec, data)
    w = weight.astype(np.int64)[0] - spec.weight_zero_points()  # (KH, KW, C*M)
    acc = np.zeros(spec.out_shape, dtype=np.int64)
    for i in range(spec.kernel[0]):
        for j in range(spec.kernel[1]):
            # Output channel c*M + m reads input channel c.
            x = np.repeat(_window(spec, padded, i, j), spec.multiplier, axis=3)
            acc += x * w[i, j]
    return _to_int32(acc + bias)


def conv2d_nhwc(spec: Conv2DSpec, data: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """int32 output of a dense conv; weights OHWI."""
    padded = _padded_centered_data(spec, data)
    w = weight.astype(np.int64) - spec.weight_zero_points()[:, None, None, None]  # (O, KH, KW, I)
    acc = np.zeros(spec.out_shape, dtype=np.int64)
    for i in range(spec.kernel[0]):
        for j in range(spec.kernel[1]):
            acc += np.einsum("nhwc,oc->nhwo", _window(spec, padded, i, j), w[:, i, j, :])
    return _to_int32(acc + bias)


def _to_int32(acc: np.ndarray) -> np.ndarray:
    # int32 accumulation wraps on overflow, as the kernels' SMLAL does; realistic layers never get near.
    return acc.astype(np.int32)


def reference_output(spec: QuantConvSpec, data: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                     requantize: RequantizeParams | None = None, residual: np.ndarray | None = None,
                     add: AddParams | None = None) -> np.ndarray:
    """The output of whichever workload `spec` describes: int32, or requantized (TFLite's
    arithmetic) when the workload fuses requantize, then added to `residual` (TFLite's ADD with
    `add`) when it fuses a residual add."""
    if isinstance(spec, DepthwiseConv2DSpec):
        acc = depthwise_conv2d_nhwc(spec, data, weight, bias)
    elif isinstance(spec, Conv2DSpec):
        acc = conv2d_nhwc(spec, data, weight, bias)
    else:
        raise TypeError(f"spec: no reference for {type(spec).__name__}")
    if not spec.requantizes:
        return acc
    if requantize is None:
        raise ValueError(f"requantize: the workload outputs {spec.output_dtype}; pass its RequantizeParams")
    out = tflite_requantize(acc, requantize.broadcast(spec.out_channels))
    if not spec.residual:
        return out
    if residual is None or add is None:
        raise ValueError("residual, add: the workload fuses a residual add; pass its other input and AddParams")
    return add_reference(out, residual, add)
