"""Validation and normalisation of convolution arguments, shared by both workloads.

Every check names the argument it rejects, so a user with a bad layer description learns which
field is wrong rather than meeting a TVM error deep inside lowering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

QUANT_DTYPES = ("int8", "uint8")
PaddingArg = str | int | Sequence[int]


def dtype_range(dtype: str) -> tuple[int, int]:
    """Inclusive value range of an 8-bit quantized dtype."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def check_dtype(name: str, dtype: object) -> str:
    if not isinstance(dtype, str):
        raise TypeError(f"{name}: dtype must be a string ('int8' or 'uint8'), got {type(dtype).__name__}")
    if dtype not in QUANT_DTYPES:
        raise TypeError(f"{name}: unsupported dtype {dtype!r}; supported: {', '.join(QUANT_DTYPES)}")
    return dtype


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def check_output_dtype(name: str, dtype: object) -> str:
    if dtype not in ("int32", *QUANT_DTYPES):
        raise TypeError(f"{name}: expected 'int32' (accumulators) or a quantized dtype "
                        f"({', '.join(QUANT_DTYPES)}) for a requantizing epilogue, got {dtype!r}")
    return str(dtype)


def check_positive_ints(name: str, values: Sequence[object], length: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name}: expected a sequence of {length} ints, got {values!r}")
    if len(values) != length:
        raise ValueError(f"{name}: expected {length} values, got {len(values)} ({tuple(values)!r})")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}: expected ints, got {v!r}")
        if v <= 0:
            raise ValueError(f"{name}: sizes must be positive, got {tuple(values)!r}")
        out.append(int(v))
    return tuple(out)


def pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    """Accept `s` or `(s_h, s_w)` for stride and dilation."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    return check_positive_ints(name, value, 2)  # type: ignore[return-value]


def check_zero_point(name: str, value: object, dtype: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    lo, hi = dtype_range(dtype)
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name}: {int(value)} is outside the range [{lo}, {hi}] of {dtype}")
    return int(value)


def check_weight_zero_point(
    name: str, value: object, dtype: str, channels: int
) -> int | tuple[int, ...]:
    """A scalar, or one zero point per output channel."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return check_zero_point(name, value, dtype)
    values = np.asarray(value)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"{name}: expected an int or a 1-D sequence of ints, got {value!r}")
    if values.shape[0] != channels:
        raise ValueError(f"{name}: expected {channels} per-channel values, got {values.shape[0]}")
    return tuple(check_zero_point(name, int(v), dtype) for v in values)


@dataclass(frozen=True)
class Padding:
    """Explicit padding of the two spatial axes, in input pixels."""

    top: int
    bottom: int
    left: int
    right: int


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    # TFLite's SAME: output = ceil(size / stride), the odd pixel of padding goes after.
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: PaddingArg,
    in_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> Padding:
    """Turn `"SAME"`, `"VALID"`, `p`, `(p_h, p_w)` or `(top, bottom, left, right)` into `Padding`."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return Padding(0, 0, 0, 0)
        if mode == "SAME":
            top, bottom = _same_padding(in_hw[0], kernel_hw[0], stride[0], dilation[0])
            left, right = _same_padding(in_hw[1], kernel_hw[1], stride[1], dilation[1])
            return Padding(top, bottom, left, right)
        raise ValueError(f"padding: expected 'SAME', 'VALID' or explicit sizes, got {padding!r}")
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        padding = (int(padding),) * 4
    if isinstance(padding, (str, bytes)) or not isinstance(padding, Sequence):
        raise TypeError(f"padding: expected a string, an int or a sequence of ints, got {padding!r}")
    values = list(padding)
    if len(values) == 2:
        values = [values[0], values[0], values[1], values[1]]
    if len(values) != 4:
        raise ValueError(f"padding: expected 1, 2 or 4 values, got {len(values)}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"padding: expected ints, got {v!r}")
        if v < 0:
            raise ValueError(f"padding: sizes must be non-negative, got {tuple(values)!r}")
    return Padding(*(int(v) for v in values))


def output_size(size: int, pad_before: int, pad_after: int, kernel: int, stride: int, dilation: int,
                axis: str) -> int:
    """Output extent of one spatial axis; rejects a dilated kernel larger than the padded input."""
    effective = (kernel - 1) * dilation + 1
    padded = size + pad_before + pad_after
    if effective > padded:
        raise ValueError(
            f"kernel: the {axis} extent {effective} (kernel {kernel}, dilation {dilation}) is larger "
            f"than the padded input ({padded})"
        )
    return (padded - effective) // stride + 1
