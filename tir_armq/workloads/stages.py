"""TE stages both workloads share: the padded input, the widening casts, the bias epilogue.

Stage names are part of the contract with the schedules: `data_pad`, `data_vec`, `weight_vec`,
`conv`, `output`, `requantize` (the fused epilogue of a workload with an int8/uint8 output) and
`residual_add` (a conv's fused residual ADD).
"""

from __future__ import annotations

from tvm import te, tirx

from .add import PARAM_NAMES as ADD_PARAM_NAMES
from .add import add_expr
from .requantize import requantize_expr
from .spec import QuantConvSpec

# Every workload has these (the int16 path adds data_vec, weight_vec and the output epilogue, the
# int8 path weight_vec and bias_vec).
STAGES = ("data_pad", "conv")


def placeholders(spec: QuantConvSpec) -> tuple[te.Tensor, te.Tensor, te.Tensor, te.Tensor | None]:
    data = te.placeholder(spec.data_shape, spec.data_dtype, name="data")
    weight = te.placeholder(spec.weight_shape, spec.weight_dtype, name="weight")
    bias = te.placeholder((spec.out_channels,), "int32", name="bias")
    weight_zp = (
        te.placeholder((spec.out_channels,), "int32", name="weight_zero_point")
        if spec.per_channel_weight_zp
        else None
    )
    return data, weight, bias, weight_zp


def pad_data(spec: QuantConvSpec, data: te.Tensor) -> te.Tensor:
    """Pad with the data zero point, so padded taps contribute exactly zero after subtraction."""
    n, h, w, c = spec.data_shape
    p = spec.padding
    fill = tirx.const(spec.data_zero_point, spec.data_dtype)

    def body(b, y, x, ch):
        inside = tirx.all(y >= p.top, y < p.top + h, x >= p.left, x < p.left + w)
        return tirx.if_then_else(inside, data[b, y - p.top, x - p.left, ch], fill)

    return te.compute((n, h + p.top + p.bottom, w + p.left + p.right, c), body, name="data_pad")


def widen_data(spec: QuantConvSpec, value: tirx.PrimExpr) -> tirx.PrimExpr:
    """`int16(x) - zp`: exact for every int8/uint8 value and zero point."""
    return value.astype("int16") - tirx.const(spec.data_zero_point, "int16")


def widen_weight(weight_zp: te.Tensor | None, spec: QuantConvSpec, value: tirx.PrimExpr,
                 out_channel: tirx.PrimExpr) -> tirx.PrimExpr:
    zp = (
        weight_zp[out_channel].astype("int16")
        if weight_zp is not None
        else tirx.const(spec.weight_zero_point, "int16")
    )
    return value.astype("int16") - zp


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


def to_prim_func(spec: QuantConvSpec, op_name: str, tensors: list[te.Tensor]) -> tirx.PrimFunc:
    func = te.create_prim_func(tensors)
    attrs = {
        "global_symbol": op_name,
        # The key TVM 0.27 honours; "tir.noalias" is silently ignored.
        "tirx.noalias": True,
        "tir_armq.op": op_name,
    }
    return func.with_attrs({**attrs, **requantize_attrs(spec)})


def requantize_attrs(spec: QuantConvSpec) -> dict:
    """The epilogue's rounding, for the schedule to pick its intrinsic; only on requantizing
    workloads, so an int32 workload keeps the structural hash its tuning records were stored under."""
    if not spec.requantizes:
        return {}
    return {"tir_armq.rounding": spec.rounding, **({"tir_armq.right_shifts": True} if spec.right_shifts else {})}
