"""Shape arithmetic of a TFLite graph folded to constants, for the Relax TFLite frontend.

A Keras model converted the way users do (`TFLiteConverter.from_keras_model`) keeps its batch
dimension open (shape_signature -1), so the converter cannot fold `tf.shape(x)[0]`: Keras' Reshape
and Flatten become RESHAPE(x, PACK(STRIDED_SLICE(SHAPE(x)), 100)). The frontend refuses SHAPE on an
int8 tensor (a quantized op it has no lowering for), and its RESHAPE would take the computed shape
as a dynamic one. But a model is built for one static shape, the `shape` of its tensors (batch 1,
what the interpreter allocates unless it is resized, and what every other op is imported at), so
those ops compute constants: here they are computed in numpy before conversion, the ops producing
them are skipped, and whoever reads their outputs (RESHAPE's shape) reads the constants as if the
file held them.

This is a converter of the frontend's own kind (`from_tflite(..., op_converter=...)`) rather than a
rewritten flatbuffer: the `tflite` package has accessors and builder functions but no object API,
so a rewrite would mean re-serializing every table of the schema by hand; and the file's operator
and tensor indices stay those LiteRT reports, which the per-layer checks compare against.
"""

from __future__ import annotations

import functools

import numpy as np
from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

# The ops folded when all their inputs are constant (SHAPE: when its input's shape is static).
FOLDABLE_OPS = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION")
# TFLite TensorType codes of shape vectors: only integer tensors without quantization are folded, so
# quantized data (whose CONCATENATION would requantize) is never touched.
_INDEX_TYPES = {2: np.int32, 4: np.int64}


class UnsupportedOpError(ValueError):
    """An operator the frontend would import with other semantics than the file's."""


class DynamicShapeError(ValueError):
    """A SHAPE op whose input has a dynamic dimension: there is no constant to fold it to."""


def strided_slice(x: np.ndarray, begin, end, strides, begin_mask: int = 0, end_mask: int = 0,
                  ellipsis_mask: int = 0, new_axis_mask: int = 0, shrink_axis_mask: int = 0,
                  offset: bool = False) -> np.ndarray:
    """TFLite's STRIDED_SLICE (TensorFlow's semantics: bit i of a mask applies to spec i)."""
    index = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        b, e, s = int(b), int(e), int(s)
        if ellipsis_mask & bit:
            index.append(Ellipsis)
        elif new_axis_mask & bit:
            index.append(np.newaxis)
        elif shrink_axis_mask & bit:
            index.append(b)
        else:
            stop = b + e if offset else e  # offset: `end` counts from `begin`
            index.append(slice(None if begin_mask & bit else b, None if end_mask & bit else stop, s))
    return np.asarray(x[tuple(index)])


def _options(op, options_class):
    options = options_class()
    table = op.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    return options


@functools.cache
def _builtin_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _op_name(model, op) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    return _builtin_names().get(builtin, f"op{builtin}")


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()


def _static_shape(subgraph, op_index: int, tensor_index: int) -> tuple[int, ...]:
    """The shape SHAPE folds to; a DynamicShapeError if the model leaves it open at build time.
    An open batch (shape_signature -1 in dim 0, as every Keras model converted from_keras_model
    has) is built at the size in `shape`; any other open dimension is an error."""
    tensor = subgraph.Tensors(tensor_index)
    shape = _shape(tensor)
    signature = tuple(int(d) for d in tensor.ShapeSignatureAsNumpy()) if tensor.ShapeSignatureLength() else ()
    name = tensor.Name().decode()
    where = f"SHAPE (operator {op_index}) of tensor {name!r}"
    if not shape and not tensor.HasRank() and signature:
        raise DynamicShapeError(f"{where}: its rank is unknown; tir_armq builds models of static shapes only")
    open_dims = [i for i, d in enumerate(shape) if d < 0]
    open_dims += [i for i, d in enumerate(signature) if d < 0 and i > 0 and i not in open_dims]
    if open_dims:
        shown = tuple(-1 if i in open_dims else d for i, d in enumerate(shape))
        raise DynamicShapeError(
            f"{where}: its shape {shown} has dynamic dimension(s) {open_dims} (-1); tir_armq builds "
            "models of static shapes only (convert with a fixed input shape)")
    return shape


def fold_shape_ops(model, subgraph) -> dict[int, np.ndarray]:
    """Tensor index -> constant value, for every output of a foldable op (FOLDABLE_OPS) that is a
    constant: SHAPE of a tensor with a static shape, then STRIDED_SLICE / PACK / CONCATENATION of
    int32/int64 constants (the file's or folded ones). Ops are in execution order, so one pass
    sees every input before its use. Raises DynamicShapeError for a SHAPE of a dynamic shape."""
    import tflite

    folded: dict[int, np.ndarray] = {}

    def constant(index: int) -> np.ndarray | None:
        if index in folded:
            return folded[index]
        tensor = subgraph.Tensors(index)
        dtype = _INDEX_TYPES.get(tensor.Type())
        buffer = model.Buffers(tensor.Buffer())
        if dtype is None or buffer is None or buffer.DataLength() == 0:  # no data: a computed tensor
            return None
        return np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype).reshape(_shape(tensor))

    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        name = _op_name(model, op)
        if name not in FOLDABLE_OPS:
            continue
        inputs = [int(t) for t in op.InputsAsNumpy()]
        outputs = [int(t) for t in op.OutputsAsNumpy()]
        if len(outputs) != 1:
            continue
        out = subgraph.Tensors(outputs[0])
        out_dtype = _INDEX_TYPES.get(out.Type())
        quantized = out.Quantization() is not None and out.Quantization().ScaleLength() > 0
        if out_dtype is None or quantized:
            continue
        if name == "SHAPE":
            value = np.array(_static_shape(subgraph, i, inputs[0]), dtype=out_dtype)
        else:
            values = [constant(t) for t in inputs]
            if any(v is None for v in values):
                continue
            if name == "STRIDED_SLICE":
                o = _options(op, tflite.StridedSliceOptions)
                value = strided_slice(*values, o.BeginMask(), o.EndMask(), o.EllipsisMask(), o.NewAxisMask(),
                                      o.ShrinkAxisMask(), o.Offset())
            elif name == "PACK":
                value = np.stack(values, axis=_options(op, tflite.PackOptions).Axis())
            else:  # CONCATENATION
                o = _options(op, tflite.ConcatenationOptions)
                if o.FusedActivationFunction() != tflite.ActivationFunctionType.NONE:
                    continue
                value = np.concatenate(values, axis=o.Axis())
        want = _shape(out)
        if value.shape != want:
            raise ValueError(f"{name} (operator {i}): folded to shape {value.shape}, the model says {want}")
        folded[outputs[0]] = value.astype(out_dtype)
    return folded


class StaticShapeConverter(OperatorConverter):
    """The frontend's converter with the graph's shape arithmetic folded (`fold_shape_ops`): a
    folded op emits nothing (the frontend's convention for an op computed at import time), and a
    folded tensor reads as a constant wherever the frontend reads tensor values."""

    # Every SHAPE is folded or refused in __init__, so none reaches Relax on a quantized tensor
    # (what the frontend's check for quantized ops guards against).
    _SUPPORTED_QUANTIZED_OPS = OperatorConverter._SUPPORTED_QUANTIZED_OPS | {"SHAPE"}

    def __init__(self, model, subgraph, exp_tab, ctx, conversion_state=None):
        super().__init__(model, subgraph, exp_tab, ctx, conversion_state)
        self.folded = fold_shape_ops(model, subgraph)
        for name in FOLDABLE_OPS:
            self.convert_map[name] = functools.partial(self._unless_folded, self.convert_map[name])

    def _unless_folded(self, convert, op):
        if all(int(t) in self.folded for t in op.OutputsAsNumpy()):
            return None
        return convert(op=op)

    def get_tensor_value(self, tensor_wrapper, is_sparse=False):
        """A folded tensor's constant, else the file's buffer (the frontend's own reading)."""
        value = self.folded.get(tensor_wrapper.tensor_idx)
        if value is not None:
            return value
        return super().get_tensor_value(tensor_wrapper, is_sparse)

    def convert_softmax(self, op):
        """The frontend's SOFTMAX takes no beta (it computes beta 1 whatever the file says): refuse
        another rather than compute something else."""
        from tflite.BuiltinOptions import BuiltinOptions
        from tflite.SoftmaxOptions import SoftmaxOptions

        if op.BuiltinOptionsType() == BuiltinOptions.SoftmaxOptions:
            options = SoftmaxOptions()
            table = op.BuiltinOptions()
            options.Init(table.Bytes, table.Pos)
            if options.Beta() != 1.0:
                raise UnsupportedOpError(f"SOFTMAX with beta {options.Beta()}: only beta 1 is supported")
        return super().convert_softmax(op)
