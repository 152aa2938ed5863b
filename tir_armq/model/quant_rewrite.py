"""Rewrite the TFLite frontend's float-simulated quantized convolutions into our integer kernels.

The Relax TFLite frontend imports a quantized CONV_2D / DEPTHWISE_CONV_2D as

    x_f = dequantize(x, sx, zx)              w_f = dequantize(W, sw, zw)  [reshape]
    y   = conv2d(x_f, w_f)                   b_f = dequantize(B, sx*sw, 0)
    q   = quantize(add(y, b_f), so, zo)      [clip(q, lo, hi): the fused activation]

which computes in float32. This pass replaces each such chain by one `call_tir` of our workload
with the requantize epilogue fused (TFLite's fixed-point multiplier and shift per output channel,
`tir_armq.requantize`), the activation clip folded into its clamp, and the weights, bias and
requantize parameters as constants. Each conv runs on the first kernel variant of the table that
applies to it (`tir_armq.kernels.select`), whose `prepare` folds the constants at build time: the
kernels' PrimFuncs hold no model constant, so two models with the same layer shapes share kernels
and tuning records. FULLY_CONNECTED runs as a 1x1 conv, the spatial MEAN (global average pooling)
on `gavgpool_q8`, the residual ADD on `vadd_q8`, SOFTMAX over the last axis on `softmax_q8`; an ADD
whose input is a conv's only use is fused into that conv's epilogue (`Conv2DSpec.residual`), so no
separate pass over the tensor remains. Everything else (ops we do not know) stays on TVM's default
path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tvm
import tvm_ffi
from tvm import relax

from ..kernels import GAVGPOOL_Q8, SOFTMAX_Q8, VADD_Q8, ConvKernel, select, with_shift_promise
from ..requantize import TFLITE_ROUNDING, RequantizeParams
from ..workloads import QuantConvSpec, conv_spec, depthwise_spec
from ..workloads.add import AddParams, add_params, has_tail
from ..workloads.mean import mean_params, optimized_mean_params
from ..workloads.params import dtype_range
from ..workloads.softmax import softmax_table


@dataclass(frozen=True)
class ConvSite:
    """One rewritten layer: the layer (its quantization included), the kernel variant that runs it,
    and the layer's constants as the model holds them (the kernel's `prepare` folds them)."""

    spec: QuantConvSpec
    kernel: ConvKernel
    weight: np.ndarray
    bias: np.ndarray
    requantize: RequantizeParams
    fully_connected: bool = False  # a (N, K) x (K, O) layer run as a 1x1 conv on (N, 1, 1, K)
    residual: AddParams | None = None  # a fused residual ADD (this conv's output is its first input)

    @property
    def kind(self) -> str:
        if self.fully_connected:
            return "fc"
        return self.spec.kind

    @property
    def tflite_ops(self) -> tuple[str, ...]:
        """The TFLite operators this kernel computes."""
        op = {"fc": "FULLY_CONNECTED", "depthwise": "DEPTHWISE_CONV_2D", "conv": "CONV_2D"}[self.kind]
        return (op, "ADD") if self.residual is not None else (op,)

    def prim_func(self) -> tvm.tirx.PrimFunc:
        return self.kernel.build(self.spec)

    @property
    def channels(self) -> int | None:
        """The layer's output channels when the kernel computes more (padded to its tile)."""
        computed = self.kernel.kernel_spec(self.spec).out_channels
        return self.spec.out_channels if computed != self.spec.out_channels else None

    def call_args(self, inputs: list[relax.Expr]) -> list[relax.Expr]:
        """The call_tir arguments: the data, the kernel's constants, the requantize parameters, then
        the residual input and its ADD parameters."""
        operands = self.kernel.prepare(self.spec, self.weight, self.bias, self.requantize)
        p = operands.requantize
        constants = [*operands.constants, p.multiplier.astype(np.int32), p.shift.astype(np.int32), p.offset_clamp()]
        args = [inputs[0], *(relax.const(a) for a in constants)]
        if self.residual is not None:
            args += [inputs[1], relax.const(self.residual.array())]
        return args

    def with_residual(self, params: AddParams) -> ConvSite:
        return replace(self, spec=replace(self.spec, residual=True), residual=params)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.kernel.kernel_spec(self.spec).out_shape

    @property
    def out_dtype(self) -> str:
        return self.requantize.output_dtype

    @property
    def name(self) -> str:
        return self.kernel.kernel_name(self.spec)

    def with_clamp(self, lo: int, hi: int) -> ConvSite:
        """The activation clip folded into the last clamp: the residual add's, else the requantize's."""
        if self.residual is not None:
            p = self.residual
            return replace(self, residual=replace(p, clamp_low=max(lo, p.clamp_low), clamp_high=min(hi, p.clamp_high)))
        p = self.requantize
        clamp = (max(lo, p.clamp[0]), min(hi, p.clamp[1]))
        return replace(self, requantize=replace(p, clamp=clamp))


class _OpSite:
    """A site of one of the other ops' kernels (`OpKernel`): its name is its PrimFunc's symbol."""

    def prim_func(self) -> tvm.tirx.PrimFunc:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return str(self.prim_func().attrs["global_symbol"])


@dataclass(frozen=True)
class MeanSite(_OpSite):
    """A MEAN over H and W (global average pooling) on our integer kernel."""

    data_shape: tuple[int, int, int, int]
    dtype: str
    input_zero_point: int
    requantize: RequantizeParams
    keepdims: bool = False  # (N, 1, 1, C) rather than (N, C): Keras' MobileNet (V1) pools so
    kind = "mean"
    tflite_ops = ("MEAN",)

    def prim_func(self) -> tvm.tirx.PrimFunc:
        return GAVGPOOL_Q8.build(self.data_shape, self.dtype, self.requantize.rounding)

    def call_args(self, inputs: list[relax.Expr]) -> list[relax.Expr]:
        p = self.requantize
        constants = (np.array([self.input_zero_point], np.int32), p.multiplier, p.shift, p.offset_clamp())
        return [*inputs, *(relax.const(a) for a in constants)]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.data_shape[0], self.data_shape[3])

    @property
    def out_dtype(self) -> str:
        return self.requantize.output_dtype

    def with_clamp(self, lo: int, hi: int) -> MeanSite:
        p = self.requantize
        clamp = (max(lo, p.clamp[0]), min(hi, p.clamp[1]))
        return replace(self, requantize=replace(p, clamp=clamp))


@dataclass(frozen=True)
class SoftmaxSite(_OpSite):
    """A SOFTMAX over the last axis of an (N, C) int8/uint8 tensor on our integer kernel (beta 1: the
    import refuses another)."""

    shape: tuple[int, int]
    dtype: str
    input_scale: float
    output_scale: float
    output_zero_point: int
    kind = "softmax"
    tflite_ops = ("SOFTMAX",)

    def prim_func(self) -> tvm.tirx.PrimFunc:
        return SOFTMAX_Q8.build(self.shape, self.dtype)

    def call_args(self, inputs: list[relax.Expr]) -> list[relax.Expr]:
        constants = (softmax_table(self.input_scale), np.array([self.output_scale], np.float32),
                     np.array([self.output_zero_point], np.int32))
        return [*inputs, *(relax.const(a) for a in constants)]

    @property
    def out_dtype(self) -> str:
        return self.dtype

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape


@dataclass(frozen=True)
class AddSite(_OpSite):
    """A quantized elementwise ADD of two tensors (residual connection) on our integer kernel."""

    shape: tuple[int, ...]
    dtype: str
    params: AddParams
    kind = "add"
    tflite_ops = ("ADD",)

    def prim_func(self) -> tvm.tirx.PrimFunc:
        return VADD_Q8.build(self.shape, self.dtype)

    def call_args(self, inputs: list[relax.Expr]) -> list[relax.Expr]:
        return [*inputs, relax.const(self.params.array())]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def out_dtype(self) -> str:
        return self.dtype

    def with_clamp(self, lo: int, hi: int) -> AddSite:
        p = self.params
        return replace(self, params=replace(p, clamp_low=max(lo, p.clamp_low), clamp_high=min(hi, p.clamp_high)))


def _op(call: relax.Expr, name: str) -> bool:
    return isinstance(call, relax.Call) and isinstance(call.op, tvm.ir.Op) and call.op.name == name


def _const(expr: relax.Expr) -> np.ndarray | None:
    # TVM 0.27 represents Relax constants as tvm.ir.GenericConst.
    return expr.value.numpy() if isinstance(expr, tvm.ir.expr.GenericConst) else None


def _scalar(expr: relax.Expr) -> float | int | None:
    value = _const(expr)
    if value is None or value.size != 1:
        return None
    return value.reshape(()).item()


class _Unmatched(Exception):
    """This chain is not a quantized conv we take: leave it as the frontend made it."""


def _need(value, what: str):
    if value is None:
        raise _Unmatched(what)
    return value


@relax.expr_functor.mutator
class QuantConvRewriter(relax.PyExprMutator):
    """See the module docstring. `emitted` lists what was rewritten, in order."""

    def __init__(self, mod: tvm.IRModule) -> None:
        super().__init__(mod)
        self.values: dict[relax.Var, relax.Expr] = {}
        self.emitted: list[tuple[str, ConvSite]] = []  # (bound var name, site)
        self.kernels: dict[int, relax.GlobalVar] = {}  # workload hash -> its PrimFunc
        self.rewritten: dict[relax.Var, tuple[relax.Expr, ConvSite]] = {}
        self.skipped: list[str] = []
        self.uses = _use_counts(mod["main"])

    # The frontend binds every intermediate to a var: remember values to walk chains backwards.
    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        self.values[binding.var] = binding.value
        if _op(binding.value, "relax.quantize"):
            try:
                site, data = self._match(binding.value)
            except _Unmatched as why:
                self.skipped.append(str(why))
            else:
                if isinstance(site, AddSite):
                    site, data = self._fuse_residual(site, data)
                self.rewritten[binding.var] = (data, site)
                self._bind(binding.var, site, data)
                return
        if _op(binding.value, "relax.clip") and binding.value.args[0] in self.rewritten \
                and hasattr(self.rewritten[binding.value.args[0]][1], "with_clamp"):
            data, site = self.rewritten[binding.value.args[0]]
            self._bind(binding.var, self._with_clip(site, binding.value), data)
            return
        super().visit_var_binding_(binding)

    def _value(self, expr: relax.Expr) -> relax.Expr:
        return self.values.get(expr, expr) if isinstance(expr, relax.Var) else expr

    def _match(self, quantize: relax.Call) -> tuple[ConvSite, relax.Expr]:
        out_scale = _need(_scalar(quantize.args[1]), "per-tensor output scale")
        out_zp = int(_need(_scalar(quantize.args[2]), "output zero point"))
        out_dtype = str(quantize.attrs.out_dtype)
        acc = self._value(quantize.args[0])
        if _op(acc, "relax.mean"):
            return self._match_mean(acc, out_scale, out_zp, out_dtype)
        if _op(acc, "relax.nn.softmax"):
            return self._match_softmax(acc, out_scale, out_zp, out_dtype)
        bias_f = None
        if _op(acc, "relax.add"):
            a, b = (self._value(arg) for arg in acc.args)
            if _op(a, "relax.dequantize") and _op(b, "relax.dequantize") and _const(a.args[0]) is None \
                    and _const(b.args[0]) is None:
                return self._match_add(a, b, out_scale, out_zp, out_dtype)
            acc, bias_f = (a, b) if _op(a, "relax.nn.conv2d") or _op(a, "relax.matmul") else (b, a)
        if _op(acc, "relax.matmul"):
            return self._match_fully_connected(acc, bias_f, out_scale, out_zp, out_dtype)
        if not _op(acc, "relax.nn.conv2d"):
            raise _Unmatched("quantize of something other than a conv2d or matmul (+ bias)")
        conv = acc
        attrs = conv.attrs
        if str(attrs.data_layout) != "NHWC" or str(attrs.out_layout) != "NHWC":
            raise _Unmatched(f"conv2d layout {attrs.data_layout}")
        x_deq = self._value(conv.args[0])
        if not _op(x_deq, "relax.dequantize"):
            raise _Unmatched("conv2d input is not dequantized")
        data = x_deq.args[0]
        in_scale = _need(_scalar(x_deq.args[1]), "per-tensor input scale")
        in_zp = int(_need(_scalar(x_deq.args[2]), "input zero point"))
        data_dtype = str(data.ty.dtype)
        w_expr = self._value(conv.args[1])
        if _op(w_expr, "relax.reshape"):
            w_expr = self._value(w_expr.args[0])
        if not _op(w_expr, "relax.dequantize"):
            raise _Unmatched("conv2d weights are not dequantized constants")
        weight = _need(_const(w_expr.args[0]), "constant weights")
        w_scale = np.atleast_1d(_need(_const(w_expr.args[1]), "constant weight scales")).astype(np.float32)
        w_zp = np.atleast_1d(_need(_const(w_expr.args[2]), "constant weight zero points")).astype(np.int64)
        strides = [int(v) for v in attrs.strides]
        dilation = [int(v) for v in attrs.dilation]
        top, left, bottom, right = (int(v) for v in attrs.padding)
        n, h, w, cin = (int(v) for v in data.ty.shape)
        groups = int(attrs.groups)
        kernel_layout = str(attrs.kernel_layout)
        common = dict(stride=strides, dilation=dilation, padding=(top, bottom, left, right), data_dtype=data_dtype,
                      weight_dtype=str(weight.dtype), data_zero_point=in_zp, output_dtype=out_dtype)
        kind = "conv" if groups == 1 else "depthwise"
        common["rounding"] = TFLITE_ROUNDING[kind]
        if groups == 1 and kernel_layout == "HWIO":
            weight = np.ascontiguousarray(weight.transpose(3, 0, 1, 2))  # HWIO -> TFLite's OHWI
            cout = weight.shape[0]
            spec = conv_spec((n, h, w, cin), weight.shape, weight_zero_point=_zero_points(w_zp, cout), **common)
        elif groups == cin and groups > 1 and kernel_layout == "HWOI":
            kh, kw = weight.shape[-3:-1] if weight.ndim == 4 and weight.shape[0] == 1 else weight.shape[:2]
            weight = np.ascontiguousarray(weight.reshape(1, kh, kw, -1))  # TFLite's (1, KH, KW, C*M)
            cout = weight.shape[3]
            spec = depthwise_spec((n, h, w, cin), weight.shape, weight_zero_point=_zero_points(w_zp, cout), **common)
        else:
            raise _Unmatched(f"grouped conv2d (groups={groups}, kernel layout {kernel_layout})")
        if w_scale.size not in (1, cout):
            raise _Unmatched(f"{w_scale.size} weight scales for {cout} channels")
        requantize = RequantizeParams.from_scales(
            in_scale, np.broadcast_to(w_scale, (cout,)), out_scale, out_zp, dtype_range(out_dtype), out_dtype,
            spec.rounding, float_product=data_dtype == "uint8",
        )
        spec = with_shift_promise(spec, requantize)
        return ConvSite(spec, select(spec, weight), weight, self._bias(bias_f, cout), requantize), data

    def _bias(self, bias_f: relax.Expr | None, channels: int) -> np.ndarray:
        if bias_f is None:
            return np.zeros(channels, np.int32)
        if not _op(bias_f, "relax.dequantize"):
            raise _Unmatched("bias is not a dequantized constant")
        return _need(_const(bias_f.args[0]), "constant bias").astype(np.int32).reshape(-1)

    def _match_fully_connected(self, matmul: relax.Call, bias_f, out_scale: float, out_zp: int, out_dtype: str):
        """FULLY_CONNECTED, imported as matmul(dequantize(x), dequantize(permute_dims(W))): a 1x1 conv."""
        x_deq, w_deq = (self._value(arg) for arg in matmul.args)
        if not (_op(x_deq, "relax.dequantize") and _op(w_deq, "relax.dequantize")):
            raise _Unmatched("matmul of tensors that are not dequantized")
        data = x_deq.args[0]
        if len(data.ty.shape) != 2:
            raise _Unmatched(f"matmul of a rank-{len(data.ty.shape)} input")
        transposed = self._value(w_deq.args[0])
        if not _op(transposed, "relax.permute_dims"):
            raise _Unmatched("fully-connected weights not in TFLite's (O, K) layout")
        weight = _need(_const(self._value(transposed.args[0])), "constant weights")  # (O, K)
        in_scale = _need(_scalar(x_deq.args[1]), "per-tensor input scale")
        in_zp = int(_need(_scalar(x_deq.args[2]), "input zero point"))
        w_scale = np.atleast_1d(_need(_const(w_deq.args[1]), "constant weight scales")).astype(np.float32)
        w_zp = np.atleast_1d(_need(_const(w_deq.args[2]), "constant weight zero points")).astype(np.int64)
        n, k = (int(v) for v in data.ty.shape)
        cout = weight.shape[0]
        spec = conv_spec((n, 1, 1, k), (cout, 1, 1, k), data_dtype=str(data.ty.dtype), weight_dtype=str(weight.dtype),
                         data_zero_point=in_zp, weight_zero_point=_zero_points(w_zp, cout), output_dtype=out_dtype,
                         rounding=TFLITE_ROUNDING["fc"])
        # Per-tensor weights: TFLite's FC takes the float32 product of the scales (as uint8 conv does).
        requantize = RequantizeParams.from_scales(
            in_scale, np.broadcast_to(w_scale, (cout,)), out_scale, out_zp, dtype_range(out_dtype), out_dtype,
            spec.rounding, float_product=w_scale.size == 1,
        )
        weight = np.ascontiguousarray(weight.reshape(cout, 1, 1, k))
        spec = with_shift_promise(spec, requantize)
        return ConvSite(spec, select(spec, weight), weight, self._bias(bias_f, cout), requantize,
                        fully_connected=True), data

    def _match_add(self, a: relax.Call, b: relax.Call, out_scale: float, out_zp: int, out_dtype: str):
        """A residual ADD: quantize(add(dequantize(x1), dequantize(x2)))."""
        x1, x2 = a.args[0], b.args[0]
        shape1, shape2 = (tuple(int(v) for v in x.ty.shape) for x in (x1, x2))
        dtype = str(x1.ty.dtype)
        if shape1 != shape2 or str(x2.ty.dtype) != dtype or dtype != out_dtype:
            raise _Unmatched(f"add of {shape1} {dtype} and {shape2} {x2.ty.dtype} (broadcast or mixed types)")
        params = add_params(_need(_scalar(a.args[1]), "input scale"), int(_need(_scalar(a.args[2]), "zero point")),
                            _need(_scalar(b.args[1]), "input scale"), int(_need(_scalar(b.args[2]), "zero point")),
                            out_scale, out_zp, dtype)
        return AddSite(shape1, dtype, params), [x1, x2]

    def _fuse_residual(self, add: AddSite, inputs: list[relax.Expr]):
        """The ADD folded into the conv producing one of its inputs, when that conv feeds nothing
        else (its own kernel then goes dead) and TFLite's ADD has no scalar tail on this shape."""
        if has_tail(add.shape):
            return add, inputs
        for k, (x, other) in enumerate((inputs, inputs[::-1])):
            data, conv = self.rewritten.get(x, (None, None))
            if isinstance(conv, ConvSite) and conv.kind == "conv" and conv.residual is None \
                    and conv.channels is None and self.uses.get(x) == 1:
                return conv.with_residual(add.params if k == 0 else add.params.swapped()), [data, other]
        return add, inputs

    def _match_mean(self, mean: relax.Call, out_scale: float, out_zp: int, out_dtype: str):
        axes = sorted(int(a) for a in mean.attrs.axis)
        x_deq = self._value(mean.args[0])
        if axes != [1, 2] or not _op(x_deq, "relax.dequantize"):
            raise _Unmatched(f"mean over axes {axes}: only the spatial mean")
        data = x_deq.args[0]
        shape = tuple(int(v) for v in data.ty.shape)
        if len(shape) != 4:
            raise _Unmatched(f"mean of a rank-{len(shape)} tensor")
        in_scale = _need(_scalar(x_deq.args[1]), "per-tensor input scale")
        in_zp = int(_need(_scalar(x_deq.args[2]), "input zero point"))
        dtype = str(data.ty.dtype)
        if dtype != out_dtype:
            raise _Unmatched(f"mean from {dtype} to {out_dtype}")
        if not mean.attrs.keepdims:
            return MeanSite(shape, dtype, in_zp, mean_params(shape, in_scale, out_scale, out_zp, dtype)), data
        # keep_dims takes the interpreter's optimized kernel, another arithmetic: ours for int8 when
        # every channel is in its NEON blocks of 16 (its scalar tail rounds differently).
        if dtype != "int8" or shape[3] % 16:
            raise _Unmatched(f"mean keeping dims of {dtype} {shape}: only int8 with channels a multiple of 16")
        params = optimized_mean_params(shape, in_scale, in_zp, out_scale, out_zp, dtype)
        return MeanSite(shape, dtype, 0, params, keepdims=True), data

    def _match_softmax(self, softmax: relax.Call, out_scale: float, out_zp: int, out_dtype: str):
        x_deq = self._value(softmax.args[0])
        if not _op(x_deq, "relax.dequantize"):
            raise _Unmatched("softmax input is not dequantized")
        data = x_deq.args[0]
        shape = tuple(int(v) for v in data.ty.shape)
        axis = int(softmax.attrs.axis)
        if len(shape) != 2 or axis not in (-1, 1):
            raise _Unmatched(f"softmax over axis {axis} of a rank-{len(shape)} tensor: only (N, C) over C")
        dtype = str(data.ty.dtype)
        if dtype != out_dtype or dtype not in ("int8", "uint8"):
            raise _Unmatched(f"softmax from {dtype} to {out_dtype}")
        in_scale = _need(_scalar(x_deq.args[1]), "per-tensor input scale")
        return SoftmaxSite(shape, dtype, float(in_scale), float(out_scale), out_zp), data

    def _with_clip(self, site, clip: relax.Call):
        lo, hi = (int(round(float(v.value))) for v in clip.args[1:3])
        return site.with_clamp(lo, hi)

    def _bind(self, var: relax.Var, site, inputs) -> None:
        inputs = [self.visit_expr(x) for x in (inputs if isinstance(inputs, list) else [inputs])]
        if getattr(site, "fully_connected", False):
            inputs = [self.builder_.emit(relax.op.reshape(inputs[0], site.spec.data_shape))]
        call = self._call(site, inputs)
        channels = getattr(site, "channels", None)
        if channels is not None:  # drop the padded channels
            call = relax.op.strided_slice(self.builder_.emit(call), axes=[3], begin=[0], end=[channels])
        if getattr(site, "fully_connected", False):
            call = relax.op.reshape(self.builder_.emit(call), (site.spec.data_shape[0], site.spec.out_channels))
        elif getattr(site, "keepdims", False):
            n, c = site.out_shape
            call = relax.op.reshape(self.builder_.emit(call), (n, 1, 1, c))
        # A dataflow block's outputs are plain Vars, emitted as outputs.
        emit = self.builder_.emit if isinstance(var, relax.DataflowVar) else self.builder_.emit_output
        new_var = emit(call, var.name)
        self.set_var_remap(var, new_var)
        self.emitted.append((new_var.name, site))

    def _call(self, site, inputs: list[relax.Expr]) -> relax.Expr:
        func = site.prim_func()
        # One PrimFunc per distinct workload, exported under its kernel name (the name says
        # everything the body depends on, so one name is one workload).
        key = tvm_ffi.structural_hash(func)
        gvar = self.kernels.get(key)
        if gvar is None:
            name = str(func.attrs["global_symbol"])
            gvar = self.builder_.add_func(func, name)
            self.kernels[key] = gvar
        return relax.call_tir(gvar, site.call_args(inputs), relax.TensorType(site.out_shape, site.out_dtype))


def _use_counts(func: relax.Function) -> dict[relax.Var, int]:
    """How many bindings (and the function's result) read each var."""
    counts: dict[relax.Var, int] = {}
    exprs = [binding.value for block in func.body.blocks for binding in block.bindings] + [func.body.body]
    for expr in exprs:
        for var in relax.analysis.free_vars(expr):
            counts[var] = counts.get(var, 0) + 1
    return counts


def _zero_points(values: np.ndarray, channels: int) -> int | list[int]:
    if values.size == 1:
        return int(values[0])
    if values.size != channels:
        raise _Unmatched(f"{values.size} weight zero points for {channels} channels")
    return [int(v) for v in values]


def rewrite_quantized_convs(mod: tvm.IRModule, *, with_layers: bool = False) -> tuple:
    """`mod` with every quantized conv/depthwise chain on our kernels; the rewritten sites that
    remain after dead-code elimination (a clip-folded layer once), and why other quantize chains
    were left alone. `with_layers`: also (tensor name, site) of each of those sites."""
    rewriter = QuantConvRewriter(mod)
    main = rewriter.visit_expr(mod["main"])
    new = rewriter.builder_.get()
    new["main"] = main
    new = relax.transform.DeadCodeElimination()(new)
    live = {binding.var.name for block in new["main"].body.blocks for binding in block.bindings}
    emitted = [(name, site) for name, site in rewriter.emitted if name in live]
    sites = [site for _, site in emitted]
    # A conv rewritten before its residual ADD was fused into it leaves its first kernel unused:
    # DeadCodeElimination keeps PrimFuncs with a global symbol, so drop ours that no site calls.
    used = {site.name for site in sites}
    for gvar in list(rewriter.kernels.values()):
        if gvar.name_hint not in used:
            del new[gvar]
    return (new, sites, rewriter.skipped, emitted) if with_layers else (new, sites, rewriter.skipped)
