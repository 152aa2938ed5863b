"""A kernel's name: its variant and the workload it computes, spelled out as XNNPACK spells its
microkernels, so that the name alone says what runs. It is the PrimFunc's global symbol, the
tuning task's name, the test id and the benchmark row.

    dwconv_int8_mla8_3x3s2_56x56x144_p0_1_0_1_s8s8_rq_s8_upward_rshift
    variant          kernel/stride  input   padding  data, weight dtypes  epilogue

Everything that decides the PrimFunc's body is in it (shapes, dtypes, stride, dilation, padding,
the epilogue's form), nothing a model's quantization fixes: two layers with one name are one
workload.
"""

from __future__ import annotations

from .spec import QuantConvSpec

_DTYPE = {"int8": "s8", "uint8": "u8", "int32": "s32"}


def _pair(prefix: str, values: tuple[int, int], default: int | None = None) -> str:
    if default is not None and values == (default, default):
        return ""
    return f"{prefix}{values[0]}" if values[0] == values[1] else f"{prefix}{values[0]}x{values[1]}"


def kernel_name(spec: QuantConvSpec, variant: str) -> str:
    """`variant` computing the layer `spec`; a valid C identifier."""
    n, h, w, c = spec.data_shape
    kh, kw = spec.kernel
    geometry = f"{kh}x{kw}{_pair('s', spec.stride)}{_pair('d', spec.dilation, 1)}"
    shape = f"{h}x{w}x{c}"
    if spec.kind == "conv":
        shape += f"to{spec.out_channels}"
    elif spec.out_channels != c:
        shape += f"m{spec.out_channels // c}"
    if n != 1:
        shape += f"n{n}"
    p = spec.padding
    parts = [variant, geometry, shape]
    if (p.top, p.bottom, p.left, p.right) != (0, 0, 0, 0):
        parts.append(f"p{p.top}_{p.bottom}_{p.left}_{p.right}")
    parts.append(_DTYPE[spec.data_dtype] + _DTYPE[spec.weight_dtype])
    if not spec.requantizes:
        parts.append("acc32")
    else:
        parts += ["rq", _DTYPE[spec.output_dtype], spec.rounding]
        if spec.right_shifts:
            parts.append("rshift")
        if spec.residual:
            parts.append("add")
    return "_".join(parts)
