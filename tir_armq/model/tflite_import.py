"""Read a .tflite file into Relax with TVM's TFLite frontend, with clear errors for bad input.

The graph's shape arithmetic on static shapes (SHAPE and what follows from it, as a Keras model
converted with an open batch dimension has before its RESHAPE) is folded to constants during the
import (`static_shapes.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm

# TFLite's schema TensorType codes of the tensors we accept as model inputs.
_QUANTIZED_TYPES = {3: "uint8", 9: "int8"}
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}


class ModelError(ValueError):
    """A model we cannot build, with the file and the reason."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class ImportedModel:
    path: Path
    mod: tvm.IRModule
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    op_counts: dict[str, int]  # TFLite builtin op name -> occurrences


def _tensor_info(subgraph, index: int) -> TensorInfo:
    t = subgraph.Tensors(index)
    q = t.Quantization()
    scale = float(q.ScaleAsNumpy()[0]) if q is not None and q.ScaleLength() else 0.0
    zero_point = int(q.ZeroPointAsNumpy()[0]) if q is not None and q.ZeroPointLength() else 0
    return TensorInfo(t.Name().decode(), tuple(int(d) for d in t.ShapeAsNumpy()),
                      _TYPE_NAMES.get(t.Type(), f"type{t.Type()}"), scale, zero_point)


def _op_counts(model) -> dict[str, int]:
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    counts: dict[str, int] = {}
    graph = model.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"op{builtin}")
        counts[name] = counts.get(name, 0) + 1
    return counts


def load_tflite(path: Path | str) -> ImportedModel:
    """Parse and import `path`: int8/uint8 models only (a float model is refused: our kernels are
    integer ones and a float model has nothing for them to do). SHAPE ops of static shapes are
    folded (`StaticShapeConverter`); one of a dynamic shape is refused, naming the op."""
    import tflite
    from tvm.relax.frontend.tflite import from_tflite

    from .static_shapes import DynamicShapeError, StaticShapeConverter, UnsupportedOpError

    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model ({err.strerror})") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier); a corrupt or foreign file?")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        graph = model.Subgraphs(0)
        inputs = tuple(_tensor_info(graph, int(i)) for i in graph.InputsAsNumpy())
        outputs = tuple(_tensor_info(graph, int(i)) for i in graph.OutputsAsNumpy())
        op_counts = _op_counts(model)
    except Exception as err:  # noqa: BLE001 - flatbuffers raises struct/index errors on truncation
        raise ModelError(f"{path}: truncated or corrupt TFLite model ({type(err).__name__}: {err})") from None
    for info in inputs:
        if info.dtype not in _QUANTIZED_TYPES.values():
            raise ModelError(
                f"{path}: input {info.name!r} is {info.dtype}; tir_armq builds quantized models (int8 or uint8 "
                "inputs). Convert with full-integer quantization (TFLite's Optimize.DEFAULT with a "
                "representative dataset and int8 input/output)."
            )
    try:
        mod = from_tflite(model, op_converter=StaticShapeConverter)
    except (DynamicShapeError, UnsupportedOpError) as err:
        raise ModelError(f"{path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - the frontend raises many error types
        raise ModelError(f"{path}: the Relax TFLite frontend could not import it: {err}") from None
    return ImportedModel(path, mod, inputs, outputs, op_counts)


def check_input(model: ImportedModel, array: np.ndarray) -> None:
    """The model's single input, by shape and dtype."""
    (info,) = model.inputs
    if not isinstance(array, np.ndarray):
        raise TypeError(f"input: expected a numpy array, got {type(array).__name__}")
    if array.dtype != np.dtype(info.dtype):
        raise TypeError(f"input: the model takes {info.dtype}, got {array.dtype}")
    if tuple(array.shape) != info.shape:
        raise ValueError(f"input: the model takes shape {info.shape}, got {tuple(array.shape)}")
