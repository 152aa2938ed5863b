"""Tiny TFLite flatbuffers written with the `tflite` package's builder functions (no TensorFlow):
graphs of a few ops, for tests of the import's graph handling."""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

_TYPES = {np.dtype(np.int8): tflite.TensorType.INT8, np.dtype(np.int32): tflite.TensorType.INT32,
          np.dtype(np.int64): tflite.TensorType.INT64, np.dtype(np.float32): tflite.TensorType.FLOAT32}


@dataclass
class Tensor:
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None  # a constant's value
    quantization: tuple[float, int] | None = None  # (scale, zero point)
    shape_signature: tuple[int, ...] | None = None


@dataclass
class Op:
    code: int  # tflite.BuiltinOperator
    inputs: list[int]
    outputs: list[int]
    options: tuple[int, dict[str, float]] | None = None  # (tflite.BuiltinOptions value, {field: value})


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def tensor(self, shape, dtype: str, data=None, **kwargs) -> int:
        """Add a tensor (a constant if `data` is given); its index."""
        value = None if data is None else np.asarray(data, dtype).reshape(shape)
        self.tensors.append(Tensor(tuple(shape), dtype, value, **kwargs))
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], outputs: list[int], options=None) -> None:
        self.ops.append(Op(code, inputs, outputs, options))


_OPTIONS = {  # BuiltinOptions value -> table name in the generated code
    tflite.BuiltinOptions.ShapeOptions: "ShapeOptions",
    tflite.BuiltinOptions.StridedSliceOptions: "StridedSliceOptions",
    tflite.BuiltinOptions.PackOptions: "PackOptions",
    tflite.BuiltinOptions.ConcatenationOptions: "ConcatenationOptions",
    tflite.BuiltinOptions.SoftmaxOptions: "SoftmaxOptions",
}


def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def serialize(graph: Graph) -> bytes:
    """`graph` as a .tflite flatbuffer (schema version 3, one subgraph)."""
    b = flatbuffers.Builder(1024)
    buffers = [0]  # buffer 0: the empty buffer every computed tensor points at
    tensor_buffers = []
    for t in graph.tensors:
        if t.data is None:
            tensor_buffers.append(0)
            continue
        data = b.CreateNumpyVector(np.frombuffer(t.data.tobytes(), np.uint8))
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data)
        buffers.append(tflite.BufferEnd(b))
        tensor_buffers.append(len(buffers) - 1)
    tflite.BufferStart(b)
    buffers[0] = tflite.BufferEnd(b)

    tensors = []
    for t, buffer in zip(graph.tensors, tensor_buffers):
        name = b.CreateString(f"t{len(tensors)}")
        shape = b.CreateNumpyVector(np.array(t.shape, np.int32))
        signature = None
        if t.shape_signature is not None:
            signature = b.CreateNumpyVector(np.array(t.shape_signature, np.int32))
        quant = None
        if t.quantization is not None:
            scale = b.CreateNumpyVector(np.array([t.quantization[0]], np.float32))
            zero = b.CreateNumpyVector(np.array([t.quantization[1]], np.int64))
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zero)
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        if signature is not None:
            tflite.TensorAddShapeSignature(b, signature)
        tflite.TensorAddType(b, _TYPES[np.dtype(t.dtype)])
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tflite.TensorAddHasRank(b, True)
        tensors.append(tflite.TensorEnd(b))

    codes = sorted({op.code for op in graph.ops})
    operators = []
    for op in graph.ops:
        inputs = b.CreateNumpyVector(np.array(op.inputs, np.int32))
        outputs = b.CreateNumpyVector(np.array(op.outputs, np.int32))
        options = None
        if op.options is not None:
            kind, fields = op.options
            table = _OPTIONS[kind]
            getattr(tflite, f"{table}Start")(b)
            for key, value in fields.items():
                getattr(tflite, f"{table}Add{key}")(b, value)
            options = getattr(tflite, f"{table}End")(b)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index(op.code))
        tflite.OperatorAddInputs(b, inputs)
        tflite.OperatorAddOutputs(b, outputs)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, op.options[0])
            tflite.OperatorAddBuiltinOptions(b, options)
        operators.append(tflite.OperatorEnd(b))

    op_codes = []
    for code in codes:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1)
        op_codes.append(tflite.OperatorCodeEnd(b))

    tensor_vec, op_vec = _vector(b, tensors), _vector(b, operators)
    inputs = b.CreateNumpyVector(np.array(graph.inputs, np.int32))
    outputs = b.CreateNumpyVector(np.array(graph.outputs, np.int32))
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensor_vec)
    tflite.SubGraphAddInputs(b, inputs)
    tflite.SubGraphAddOutputs(b, outputs)
    tflite.SubGraphAddOperators(b, op_vec)
    subgraph = tflite.SubGraphEnd(b)

    codes_vec, subgraphs_vec, buffers_vec = _vector(b, op_codes), _vector(b, [subgraph]), _vector(b, buffers)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs_vec)
    tflite.ModelAddBuffers(b, buffers_vec)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
