"""Model build: TFLite models built with our kernels and run on the emulated aarch64 board give the
int8/uint8 outputs of the LiteRT interpreter's builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)
on the same board, bit for bit; bad input is refused with a clear message.

The models are committed (scripts/make_model_files.py): MobileNetV2 alpha 0.35 at 96x96 in TFLite's
int8 scheme and in the uint8 asymmetric one, MobileNet (V1) alpha 0.25 at 96x96 int8 (also converted
as users do, from_keras_model, with SHAPE arithmetic before its RESHAPE), single layers with awkward
shapes, and one model per other MobileNet op. Shape arithmetic folded at import is also checked on
tiny graphs written here (tests/tiny_tflite.py).
"""

from __future__ import annotations

import json

import re
from pathlib import Path

import numpy as np
import pytest
import tflite
import tvm
import tvm_ffi

from tir_armq.database import SHIPPED, LayeredDatabase, TargetDatabase
from tir_armq.kernels import design_spaces
from tir_armq.model.build import build_model, schedule_kernels
from tir_armq.model.quant_rewrite import AddSite, MeanSite, SoftmaxSite, rewrite_quantized_convs
from tir_armq.model.run import run_model
from tir_armq.model.static_shapes import fold_shape_ops, strided_slice
from tir_armq.model.tflite_import import ModelError, load_tflite
from tir_armq.reference import reference_output
from tir_armq.targets import AARCH64_A72
from tir_armq.workloads.add import add_reference
from tir_armq.workloads.mean import mean_reference
from tir_armq.workloads.params import dtype_range
from tir_armq.workloads.softmax import softmax_reference, softmax_table

from tiny_tflite import Graph, serialize

MODELS = Path(__file__).resolve().parent.parent / "tir_armq" / "models"
# (model, TFLite operators on our kernels)
SINGLE_LAYERS = {
    "dw_c100_s1_3x3": 1, "dw_c32_s2_3x3": 1, "dw_c24_s1_5x5": 1, "dw_c16_m2_3x3": 1,
    "conv_c24_1x1_linear": 1, "conv_c8_3x3_s2_linear": 1,
    "op_add_residual": 2, "op_add_tail": 2, "op_mean_spatial": 1, "op_fully_connected": 1, "op_softmax": 1,
}
# (model, TFLite operators on our kernels, residual ADDs fused into their conv, ADDs on their own)
MOBILENETS = {
    "mobilenet_v2_035_96_int8": (65, 8, ["vadd_q8_1x3x3x56_int8"] * 2),
    "mobilenet_v2_035_96_uint8": (65, 8, ["vadd_q8_1x3x3x56_uint8"] * 2),
    "mobilenet_v1_025_96_int8": (30, 0, []),
    "mobilenet_v1_025_96_int8_from_keras": (30, 0, []),  # + SHAPE, STRIDED_SLICE, PACK: folded at import
}
OUR_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX")  # all but RESHAPE


def _input(model, seed: int = 0) -> np.ndarray:
    (info,) = model.inputs
    lo, hi = dtype_range(info.dtype)
    return np.random.default_rng(seed).integers(lo, hi, info.shape, endpoint=True).astype(info.dtype)


def _litert(path: Path, x: np.ndarray, tmp_path: Path, dump: bool = False):
    from tir_armq.bench.litert import run_litert_guest

    np.save(tmp_path / "x.npy", x)
    run_litert_guest(path, warmup=0, invokes=1, xnnpack=False, input=tmp_path / "x.npy",
                     out=tmp_path / "y.npy",
                     dump=tmp_path / "t.npz" if dump else None)
    return np.load(tmp_path / "y.npy"), (np.load(tmp_path / "t.npz") if dump else None)


def _build_and_run(path: Path, x: np.ndarray, tmp_path: Path, board_key: str, layers: int,
                   threads: int = 1, db_roots: tuple = (), rebuilt: bool = False) -> np.ndarray:
    built = build_model(path, AARCH64_A72.with_threads(threads), db_roots=db_roots)
    assert built.layers == layers, built.report()
    # With the shipped records on several threads, one-thread records rebuilt for them (`kernels.retarget`).
    assert (built.retargeted > 0) == rebuilt, built.kernel_table()
    library = built.export(tmp_path / "model.so")
    return run_model(library, x, key=board_key)


@pytest.mark.board
@pytest.mark.parametrize("name", sorted(SINGLE_LAYERS))
def test_single_layer_model_matches_litert(name, tmp_path, board_key):
    path = MODELS / f"{name}.tflite"
    x = _input(load_tflite(path), seed=1)
    expected, _ = _litert(path, x, tmp_path)
    np.testing.assert_array_equal(_build_and_run(path, x, tmp_path, board_key, SINGLE_LAYERS[name]), expected)


def _tflite_ops(path: Path) -> list[tuple[str, list[int], list[int]]]:
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        ops.append((names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())],
                    [int(t) for t in op.InputsAsNumpy()], [int(t) for t in op.OutputsAsNumpy()]))
    return ops


@pytest.mark.board
@pytest.mark.parametrize("records", ["fixed", "shipped"])
def test_four_thread_build_matches_litert(records, tmp_path, board_key):
    """MobileNetV2 built for 4 threads (parallel loops in its kernels: the fixed schedules', or the
    shipped one-thread records' rebuilt for 4 threads), run on 4 threads of the board's pool: the
    interpreter's output exactly."""
    name = "mobilenet_v2_035_96_int8"
    path = MODELS / f"{name}.tflite"
    x = _input(load_tflite(path), seed=2)
    expected, _ = _litert(path, x, tmp_path)
    shipped = records == "shipped"
    got = _build_and_run(path, x, tmp_path, board_key, MOBILENETS[name][0], threads=4,
                         db_roots=(SHIPPED,) if shipped else (), rebuilt=shipped)
    assert json.loads((tmp_path / "model.so.json").read_text())["threads"] == 4
    np.testing.assert_array_equal(got, expected)


@pytest.mark.board
@pytest.mark.parametrize("name", sorted(MOBILENETS))
def test_mobilenet_matches_litert(name, tmp_path, board_key):
    """The whole model's output, and every layer on our kernels checked on its own: given the
    interpreter's input tensor of that layer, our arithmetic gives the interpreter's output tensor
    (so an exact final output is no accident of the ops left on TVM's float path)."""
    path = MODELS / f"{name}.tflite"
    model = load_tflite(path)
    x = _input(model)
    expected, tensors = _litert(path, x, tmp_path, dump=True)
    layers, fused_adds, _ = MOBILENETS[name]
    np.testing.assert_array_equal(_build_and_run(path, x, tmp_path, board_key, layers), expected)

    _, sites, _ = rewrite_quantized_convs(model.mod)
    ours = iter(op for op in _tflite_ops(path) if op[0] in OUR_OPS)
    assert sum(len(site.tflite_ops) for site in sites) == layers
    fused = 0
    for site in sites:
        (op, inputs, outputs) = next(ours)
        layer_in, layer_out = tensors[f"t{inputs[0]}"], tensors[f"t{outputs[0]}"]
        if isinstance(site, AddSite):
            got = add_reference(layer_in, tensors[f"t{inputs[1]}"], site.params)
        elif isinstance(site, MeanSite):
            got = mean_reference(layer_in, site.input_zero_point, site.requantize)
        elif isinstance(site, SoftmaxSite):
            got = softmax_reference(layer_in, softmax_table(site.input_scale), site.output_scale,
                                    site.output_zero_point)
        else:
            residual = None
            if site.residual is not None:  # the conv's ADD comes next; its other input is the residual
                conv_out = outputs[0]
                (op, inputs, outputs) = next(ours)
                assert op == "ADD" and conv_out in inputs, (op, inputs)
                residual = tensors[f"t{inputs[1] if inputs[0] == conv_out else inputs[0]}"]
                layer_out = tensors[f"t{outputs[0]}"]
                fused += 1
            got = reference_output(site.spec, layer_in.reshape(site.spec.data_shape), site.weight, site.bias,
                                   site.requantize, residual, site.residual)
            got = got[..., : site.channels]  # a classifier computed on padded channels
        got = got.reshape(layer_out.shape)
        np.testing.assert_array_equal(got, layer_out, err_msg=f"{op} {site.name}")
    assert fused == fused_adds


def test_rewrite_covers_mobilenet_ops():
    """Which ops run on our kernels: every conv, depthwise conv, residual add, the mean and the
    classifier and the SOFTMAX (all but V1's RESHAPE); on the scheme's variant (dwconv_int8_mla8 for the int8
    depthwise layers, dwconv_int16 for uint8 asymmetric weights)."""
    for name, (layers, fused_adds, standalone_adds) in MOBILENETS.items():
        model = load_tflite(MODELS / f"{name}.tflite")
        _, sites, _ = rewrite_quantized_convs(model.mod)
        assert sum(model.op_counts.get(op, 0) for op in OUR_OPS) == sum(len(site.tflite_ops) for site in sites) == layers
        variants = {site.kernel.name for site in sites if site.kind == "depthwise"}
        assert variants == ({"dwconv_int16"} if "_uint8" in name else {"dwconv_int8_mla8"})
        # Residual ADDs: fused into the projecting conv, except where TFLite's ADD has a scalar
        # tail (3x3x56: 504 elements, 504 % 16 = 8), which stays a kernel of its own.
        assert sum(getattr(site, "residual", None) is not None for site in sites) == fused_adds
        assert [site.name for site in sites if isinstance(site, AddSite)] == standalone_adds


# --- shape arithmetic folded at import ------------------------------------------------------------

def test_report_names_the_ops_left_on_the_default_path():
    """The build report says which TFLite ops stay on TVM's default path, by name and count: MobileNet
    V1's RESHAPE; none in MobileNetV2."""
    from tir_armq.model.build import BuiltModel

    for name, left in (("mobilenet_v1_025_96_int8", {"RESHAPE": 1}), ("mobilenet_v2_035_96_int8", {})):
        model = load_tflite(MODELS / f"{name}.tflite")
        built = BuiltModel(None, model, rewrite_quantized_convs(model.mod)[1], None)
        assert built.default_path_ops == left
        assert ("RESHAPE x1" in built.report()) == bool(left)
        assert ("no op left on TVM's default path" in built.report()) == (not left)


def test_shape_ops_of_the_keras_converted_mobilenet_fold_to_constants():
    """from_keras_model leaves the batch open: RESHAPE(logits, PACK(STRIDED_SLICE(SHAPE(logits)), 100)).
    On the model's static shapes (batch 1) that is the constant (1, 100), and the import reshapes
    to it (the same Relax reshape as the model converted with a fixed batch)."""
    path = MODELS / "mobilenet_v1_025_96_int8_from_keras.tflite"
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    outputs = {name: out[0] for name, _, out in _tflite_ops(path)}
    folded = fold_shape_ops(model, model.Subgraphs(0))
    assert folded.keys() == {outputs["SHAPE"], outputs["STRIDED_SLICE"], outputs["PACK"]}
    expected = {"SHAPE": np.array([1, 1, 1, 100]), "STRIDED_SLICE": np.array(1), "PACK": np.array([1, 100])}
    for name, value in expected.items():
        got = folded[outputs[name]]
        assert got.dtype == np.int32 and got.shape == value.shape and np.array_equal(got, value), (name, got)
    imported = load_tflite(path)
    assert imported.op_counts["SHAPE"] == 1
    script = imported.mod.script()
    assert "shape_of" not in script and re.search(r"R.reshape\(\w+, R.shape\(\[1, 100\]\)\)", script)
    assert [int(d) for d in imported.mod["main"].ret_ty.shape] == [1, 100]


def _flatten_graph(shape=(1, 4, 4, 2), signature=(-1, 4, 4, 2)) -> Graph:
    """RESHAPE(x, CONCATENATION(STRIDED_SLICE(SHAPE(x), [0], [1], [1]), [32])): a flatten of an open
    batch as tf.keras 2 wrote it (concat of tf.shape(x)[:1] and the flattened size)."""
    ops, options = tflite.BuiltinOperator, tflite.BuiltinOptions
    g = Graph()
    x = g.tensor(shape, "int8", quantization=(0.5, 0), shape_signature=signature)
    x_shape = g.tensor((4,), "int32")
    g.op(ops.SHAPE, [x], [x_shape], (options.ShapeOptions, {"OutType": tflite.TensorType.INT32}))
    begin, end, stride = (g.tensor((1,), "int32", v) for v in ([0], [1], [1]))
    batch = g.tensor((1,), "int32")
    g.op(ops.STRIDED_SLICE, [x_shape, begin, end, stride], [batch], (options.StridedSliceOptions, {}))
    new_shape = g.tensor((2,), "int32")
    g.op(ops.CONCATENATION, [batch, g.tensor((1,), "int32", [32])], [new_shape],
         (options.ConcatenationOptions, {"Axis": 0}))
    y = g.tensor((1, 32), "int8", quantization=(0.5, 0), shape_signature=(signature[0], 32))
    g.op(ops.RESHAPE, [x, new_shape], [y])
    g.inputs, g.outputs = [x], [y]
    return g


def test_folded_flatten_runs(tmp_path):
    """SHAPE -> STRIDED_SLICE -> CONCATENATION folded to (1, 32); the imported model, compiled for
    the host, flattens its input."""
    from tvm import relax

    graph = _flatten_graph()
    path = tmp_path / "flatten.tflite"
    path.write_bytes(serialize(graph))
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    folded = fold_shape_ops(model, model.Subgraphs(0))
    shape, batch, new_shape = (op.outputs[0] for op in graph.ops[:3])
    assert {k: v.tolist() for k, v in folded.items()} == {shape: [1, 4, 4, 2], batch: [1], new_shape: [1, 32]}
    imported = load_tflite(path)
    vm = relax.VirtualMachine(tvm.compile(imported.mod, target="llvm"), tvm.cpu())
    x = _input(imported, seed=3)
    np.testing.assert_array_equal(vm["main"](tvm.runtime.tensor(x)).numpy(), x.reshape(1, 32))


@pytest.mark.parametrize("shape, signature, dims", [
    ((-1, 4, 4, 2), (-1, 4, 4, 2), r"\(-1, 4, 4, 2\) has dynamic dimension\(s\) \[0\]"),
    ((1, 4, 4, 2), (-1, -1, -1, 2), r"\(1, -1, -1, 2\) has dynamic dimension\(s\) \[1, 2\]"),
], ids=["unknown_batch", "open_height_width"])
def test_shape_of_a_dynamic_shape_is_refused(tmp_path, shape, signature, dims):
    """A -1 in the shape, or an open dimension other than the batch: no constant to fold to."""
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(serialize(_flatten_graph(shape, signature)))
    where = r"dynamic.tflite: SHAPE \(operator 0\) of tensor 't0': its shape "
    with pytest.raises(ModelError, match=where + dims):
        load_tflite(path)


def test_strided_slice_follows_tensorflow_masks():
    x = np.arange(24).reshape(2, 3, 4)
    cases = [
        (([1, 0, 0], [2, 2, 4], [1, 1, 2]), {"begin_mask": 0b001}, x[:2, 0:2, 0:4:2]),
        (([1, 0, 0], [2, 2, 3], [1, 1, 1]), {"end_mask": 0b110}, x[1:2, 0:, 0:]),
        (([1], [2], [1]), {"shrink_axis_mask": 1}, x[1]),
        (([0, 2, 3], [0, 0, 0], [1, -1, -2]), {"begin_mask": 1, "end_mask": 0b111}, x[:, 2::-1, 3::-2]),
        (([0, 1], [0, 3], [1, 1]), {"ellipsis_mask": 0b01}, x[..., 1:3]),
        (([0, 0], [0, 2], [1, 1]), {"new_axis_mask": 0b01}, x[np.newaxis, 0:2]),
        (([1], [1], [1]), {"offset": True}, x[1:2]),
        (([-1], [-3], [-1]), {}, x[-1:-3:-1]),
    ]
    for (begin, end, strides), masks, want in cases:
        got = strided_slice(x, begin, end, strides, **masks)
        assert got.shape == want.shape and np.array_equal(got, want), (begin, end, strides, masks)


# --- bad input ----------------------------------------------------------------------------------

def test_float_model_is_refused():
    with pytest.raises(ModelError, match="float32.*quantized"):
        load_tflite(MODELS / "float_dw_c8.tflite")


def test_truncated_model_is_refused(tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes((MODELS / "dw_c32_s2_3x3.tflite").read_bytes()[:300])
    with pytest.raises(ModelError, match="cut.tflite: truncated or corrupt"):
        load_tflite(cut)


def test_foreign_file_is_refused(tmp_path):
    other = tmp_path / "model.tflite"
    other.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        load_tflite(other)
    with pytest.raises(ModelError, match="cannot read"):
        load_tflite(tmp_path / "missing.tflite")


def test_wrong_input_is_refused(tmp_path):
    built = build_model(MODELS / "dw_c32_s2_3x3.tflite", AARCH64_A72, db_roots=())
    library = built.export(tmp_path / "dw.so")
    x = _input(built.model)
    with pytest.raises(TypeError, match="takes int8, got uint8"):
        run_model(library, x.astype(np.uint8), key="unused")
    with pytest.raises(ValueError, match=r"takes shape \(1, 15, 15, 32\)"):
        run_model(library, x[:, :14], key="unused")
    (tmp_path / "dw.so.json").unlink()
    with pytest.raises(ModelError, match="no dw.so.json"):
        run_model(library, x, key="unused")


def test_model_tasks_are_the_build_kernels():
    """`tir-armq tune --model` tunes the very PrimFuncs the build looks up, one per distinct workload,
    named by kernel name: the requantizing depthwise workloads (the model's rounding), the
    pointwise convs on conv_c2 (K <= 384) and conv_c8, the 3x3 stem, the standalone ADD, the
    MEAN and the SOFTMAX (one schedule each: measured once, so every kernel of the build has a record)."""
    from collections import Counter

    from tir_armq.model.tasks import model_tasks

    path = MODELS / "mobilenet_v2_035_96_int8.tflite"
    tasks = model_tasks(path)
    assert len({t.name for t in tasks}) == len(tasks)
    assert all(t.name == str(t.func.attrs["global_symbol"]) for t in tasks)
    kinds = Counter(str(t.func.attrs["tir_armq.kernel"]) for t in tasks)
    assert kinds == {"dwconv_int8_mla8": 10, "conv_c2": 19, "conv_c8": 1, "conv_c8_im2col": 1, "vadd_q8": 1,
                     "gavgpool_q8": 1, "softmax_q8": 1}
    mod = rewrite_quantized_convs(load_tflite(path).mod)[0]
    built = {str(f.attrs["global_symbol"]) for _, f in mod.functions.items()
             if isinstance(f, tvm.tirx.PrimFunc) and "tir_armq.kernel" in f.attrs}
    assert {t.name for t in tasks} == built


# --- workload identity --------------------------------------------------------------------------

def _requantized(path: Path, out: Path) -> Path:
    """A copy of the model with other quantization: every activation's zero point moved and its
    scale grown, every weight scale shrunk, patched in place in the flatbuffer (so the file stays
    valid and only those numbers change)."""
    buf = bytearray(path.read_bytes())
    model = tflite.Model.GetRootAsModel(bytes(buf), 0)
    graph = model.Subgraphs(0)
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        q = tensor.Quantization()
        if q is None or q.ScaleLength() == 0:
            continue
        constant = model.Buffers(tensor.Buffer()).DataLength() > 0
        # QuantizationParameters' vtable slots: scale 8, zero_point 10.
        scale_at = q._tab.Vector(q._tab.Offset(8))
        scales = np.frombuffer(buf, np.float32, q.ScaleLength(), scale_at)
        scales[:] = scales * (np.float32(0.8) if constant else np.float32(1.25))
        if not constant and tensor.Type() in (tflite.TensorType.INT8, tflite.TensorType.UINT8):
            zp_at = q._tab.Vector(q._tab.Offset(10))
            zero_points = np.frombuffer(buf, np.int64, q.ZeroPointLength(), zp_at)
            lo, hi = (-128, 127) if tensor.Type() == tflite.TensorType.INT8 else (0, 255)
            zero_points[:] = np.clip(zero_points + 13, lo, hi - 1)
    out.write_bytes(bytes(buf))
    return out


def test_another_quantization_of_a_model_reuses_its_kernels_and_records(tmp_path):
    """The same model with other zero points and scales (another training, another calibration)
    builds the same kernels: every kernel has the same workload (structural hash) and finds the
    same tuning record as in the first model's build, though every constant differs."""
    path = MODELS / "mobilenet_v2_035_96_int8.tflite"
    other = _requantized(path, tmp_path / "other.tflite")
    (mod_a, sites_a, _), (mod_b, sites_b, _) = (rewrite_quantized_convs(load_tflite(p).mod)
                                                for p in (path, other))
    assert [s.name for s in sites_a] == [s.name for s in sites_b]
    convs = [(a, b) for a, b in zip(sites_a, sites_b) if hasattr(a, "kernel")]
    assert all(a.spec.data_zero_point != b.spec.data_zero_point
               for a, b in convs if a.spec.data_zero_point < 114)
    assert all(not np.array_equal(a.requantize.multiplier, b.requantize.multiplier) for a, b in convs)

    def kernels(mod):
        return {str(f.attrs["global_symbol"]): f for _, f in mod.functions.items()
                if isinstance(f, tvm.tirx.PrimFunc) and "tir_armq.kernel" in f.attrs}

    ours_a, ours_b = kernels(mod_a), kernels(mod_b)
    assert ours_a.keys() == ours_b.keys()
    for name, func in ours_a.items():
        assert tvm_ffi.structural_hash(func) == tvm_ffi.structural_hash(ours_b[name]), name
    # A record for every kernel of the first build (its first design space as sampled) ...
    target = AARCH64_A72.tvm_target()
    db = TargetDatabase(tmp_path / "db", AARCH64_A72, create=True)
    for k, func in enumerate(ours_a.values()):
        db.commit(func, design_spaces(func, target)[0], 1e-6 * (k + 1))
    # ... is found, the same one, by the second's.
    for name, func in ours_b.items():
        (record,) = db.records(func, limit=1)
        assert str(record.trace) == str(db.records(ours_a[name], limit=1)[0].trace)
    for mod in (mod_a, mod_b):
        _, found = schedule_kernels(mod, AARCH64_A72, LayeredDatabase([db]))
        assert found.keys() == ours_a.keys()
