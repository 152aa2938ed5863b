"""TE stages the int16 workloads share (the padded input, the widening casts, the bias epilogue)
and the epilogue every conv workload has.

Stage names are part of the contract with the schedules: `data_pad`, `data_vec`, `weight_vec`,
`conv`, `output`, `requantize` (the fused epilogue of a workload with an int8/uint8 output) and
`residual_add` (a conv's fused residual ADD).

Zero points are arguments, never constants of the body: `data_zero_point` (one int32) and
`weight_zero_point` (one int32 per output channel), so that one PrimFunc, and one tuned record,
serves every model with the layer's shapes.
"""

from __future__ import annotations

from tvm import te, tirx

from .add import PARAM_NAMES as ADD_PARAM_NAMES
from .add import add_expr
from .naming import kernel_name
from .requantize import requantize_expr
from .spec import QuantConvSpec


def placeholders(spec: QuantConvSpec) -> tuple[te.Tensor, te.Tensor, te.Tensor, te.Tensor, te.Tensor]:
    """data, weight (TFLite's layout), bias, weight_zero_point (per output channel), data_zero_point."""
    data = te.placeholder(spec.data_shape, spec.data_dtype, name="data")
    weight = te.placeholder(spec.weight_shape, spec.weight_dtype, name="weight")
    bias = te.placeholder((spec.out_channels,), "int32", name="bias")
    weight_zp = te.placeholder((spec.out_channels,), "int32", name="weight_zero_point")
    data_zp = te.placeholder((1,), "int32", name="data_zero_point")
    return data, weight, bias, weight_zp, data_zp


def pad_data(spec: QuantConvSpec, data: te.Tensor, data_zp: te.Tensor) -> te.Tensor:
    """Pad with the data zero point, so padded taps contribute exactly zero after subtraction."""
    n, h, w, c = spec.data_shape
    p = spec.padding
    fill = data_zp(0).astype(spec.data_dtype)

    def body(b, y, x, ch):
        inside = tirx.all(y >= p.top, y < p.top + h, x >= p.left, x < p.left + w)
        return tirx.if_then_else(inside, data[b, y - p.top, x - p.left, ch], fill)

    return te.compute((n, h + p.top + p.bottom, w + p.left + p.right, c), body, name="data_pad")


def widen_data(value: tirx.PrimExpr, data_zp: te.Tensor) -> tirx.PrimExpr:
    """`int16(x) - zp`: exact for every int8/uint8 value and zero point."""
    return value.astype("int16") - data_zp(0).astype("int16")


def widen_weight(value: tirx.PrimExpr, weight_zp: te.Tensor, out_channel: tirx.PrimExpr) -> tirx.PrimExpr:
    return value.astype("int16") - weight_zp(out_channel).astype("int16")


def add_bias(spec: QuantConvSpec, acc, bias: te.Tensor) -> te.Tensor:
    """`output[n, oh, ow, oc] = acc(n, oh, ow, oc) + bias[oc]`, acc a callable on indices."""
    return te.compute(
        spec.out_shape, lambda b, y, x, oc: acc(b, y, x, oc) + bias[oc], name="output"
    )


def requantize_placeholders(spec: QuantConvSpec) -> list[te.Tensor]:
    """multiplier, shift (per output channel) and offset_clamp (zero point, clamp low, high)."""
    oc = spec.out_channels
    return [
        te.placeholder((oc,), "int32", name="multiplier"),
        te.placeholder((oc,), "int32", name="shift"),
        te.placeholder((3,), "int32", name="offset_clamp"),
    ]


def requantize_stage(spec: QuantConvSpec, acc: te.Tensor, params: list[te.Tensor]) -> te.Tensor:
    """`requantize[n, oh, ow, oc]`: TFLite's requantize of the int32 `acc`, into spec.output_dtype."""
    multiplier, shift, offset_clamp = params
    return te.compute(
        spec.out_shape,
        lambda b, y, x, oc: requantize_expr(
            # TE's call syntax yields PrimExprs (indexing yields TensorSlices).
            acc(b, y, x, oc), multiplier(oc), shift(oc), offset_clamp(0), offset_clamp(1), offset_clamp(2),
            spec.output_dtype, spec.rounding,
        ),
        name="requantize",
    )


def residual_add_stage(spec: QuantConvSpec, requantized: te.Tensor) -> list[te.Tensor]:
    """`residual_add[n, oh, ow, oc]`: TFLite's ADD of the requantized output and the `residual`
    input (`add_params`: the int32 AddParams); returns [residual, add_params, residual_add]."""
    residual = te.placeholder(spec.out_shape, spec.output_dtype, name="residual")
    params = te.placeholder((len(ADD_PARAM_NAMES),), "int32", name="add_params")
    scalars = [params(k) for k in range(len(ADD_PARAM_NAMES))]
    out = te.compute(spec.out_shape, lambda *i: add_expr(requantized(*i), residual(*i), scalars, spec.output_dtype),
                     name="residual_add")
    return [residual, params, out]


def epilogue_args(spec: QuantConvSpec, output: te.Tensor) -> list[te.Tensor]:
    """The trailing PrimFunc arguments after the optional weight zero point: the int32 `output`,
    or the requantize parameters and the requantized output, or those and the residual add's."""
    if not spec.requantizes:
        return [output]
    params = requantize_placeholders(spec)
    requantized = requantize_stage(spec, output, params)
    if not spec.residual:
        return [*params, requantized]
    return [*params, *residual_add_stage(spec, requantized)]


def to_prim_func(spec: QuantConvSpec, variant: str, tensors: list[te.Tensor]) -> tirx.PrimFunc:
    return te.create_prim_func(tensors).with_attrs(workload_attrs(spec, variant))


def workload_attrs(spec: QuantConvSpec, variant: str) -> dict:
    """A conv kernel's attributes: its name (the global symbol) and variant, which its schedule
    rule recognises it by; no aliasing (the key TVM 0.27 honours; "tir.noalias" is silently
    ignored); the epilogue's rounding and shift form, which pick its intrinsic."""
    attrs = {"global_symbol": kernel_name(spec, variant), "tir_armq.kernel": variant, "tirx.noalias": True}
    if spec.requantizes:
        attrs["tir_armq.rounding"] = spec.rounding
        if spec.right_shifts:
            attrs["tir_armq.right_shifts"] = True
    return attrs
