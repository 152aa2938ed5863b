"""Write the single-layer int8 TFLite models the XNNPACK benchmark runs (tir_armq/bench/models/).

A one-off developer script, not part of set-up or CI: the models are committed. To regenerate
(TensorFlow is needed only here):

    python3 -m venv ~/.cache/tir_armq/tfvenv
    ~/.cache/tir_armq/tfvenv/bin/pip install tensorflow-cpu
    ~/.cache/tir_armq/tfvenv/bin/python scripts/make_layer_models.py [--out tir_armq/bench/models]

For each distinct conv and depthwise layer of MobileNetV2-1.0-224 and MobileNetV1-1.0-224 (the
union, deduplicated by Layer, from tir_armq/networks.py) it writes `<layer.name>.tflite`: one
CONV_2D or DEPTHWISE_CONV_2D op with the layer's kernel and stride, SAME padding, a bias and a fused
RELU6; int8 input (1, hw, hw, cin) with zero point -3 (as Layer.spec()) and int8 output (zero point
-128: the RELU6 range); full-integer quantization (Optimize.DEFAULT, a small deterministic
representative dataset, TFLITE_BUILTINS_INT8) with symmetric per-channel int8 weights. Weights,
biases and the representative data come from fixed seeds, so a re-run writes byte-identical files
(`--check` verifies that without writing). 47 models, about 4 MB, written in ~10 s.

The layer table is read without importing tvm: networks.py only needs `tir_armq.workloads` for
Layer.spec(), so the script loads networks.py with a stand-in for that module.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DEFAULT = REPO / "tir_armq" / "bench" / "models"
NETWORKS = ("mobilenet_v2", "mobilenet_v1")
REPRESENTATIVE_SAMPLES = 8
# Calibration range of the input: scale (1.30 + 1.25) / 255 = 0.01 and zero point
# -128 + 1.25 / 0.01 = -3, the data zero point of Layer.spec().
DATA_MIN, DATA_MAX = -1.25, 1.30
DATA_ZERO_POINT = -3


def load_networks():
    """tir_armq/networks.py as a module, without tir_armq/__init__ or tir_armq.workloads (tvm)."""
    pkg = types.ModuleType("tir_armq")
    pkg.__path__ = []  # a namespace for the two modules below only
    workloads = types.ModuleType("tir_armq.workloads")

    def _needs_tvm(*_a, **_k):
        raise RuntimeError("Layer.spec() needs tir_armq.workloads (tvm); not available here")

    workloads.QuantConvSpec = object
    workloads.conv_spec = workloads.depthwise_spec = _needs_tvm
    saved = {k: sys.modules.get(k) for k in ("tir_armq", "tir_armq.workloads", "tir_armq.networks")}
    sys.modules["tir_armq"] = pkg
    sys.modules["tir_armq.workloads"] = workloads
    try:
        spec = importlib.util.spec_from_file_location("tir_armq.networks", REPO / "tir_armq" / "networks.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["tir_armq.networks"] = mod
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return mod


def all_layers(networks_mod):
    """Distinct conv/depthwise layers of both networks, in first-seen order (MNv2 first)."""
    seen = {}
    for net in NETWORKS:
        for layer, _count in networks_mod.distinct_layers(net):
            seen.setdefault(layer, None)
    return list(seen)


def _seed(layer) -> int:
    return int.from_bytes(hashlib.sha256(layer.name.encode()).digest()[:4], "little")


def make_model(layer) -> bytes:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(_seed(layer))
    k, s = layer.kernel, layer.stride
    if layer.kind == "depthwise":
        assert layer.cin == layer.cout
        fan_in = k * k
        w = (rng.standard_normal((k, k, layer.cin, 1)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    else:
        fan_in = k * k * layer.cin
        w = (rng.standard_normal((k, k, layer.cin, layer.cout)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    b = (rng.standard_normal(layer.cout) * 0.1).astype(np.float32)
    wt, bt = tf.constant(w), tf.constant(b)
    shape = (1, layer.hw, layer.hw, layer.cin)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def f(x):
        if layer.kind == "depthwise":
            y = tf.nn.depthwise_conv2d(x, wt, strides=[1, s, s, 1], padding="SAME")
        else:
            y = tf.nn.conv2d(x, wt, strides=[1, s, s, 1], padding="SAME")
        return tf.nn.relu6(tf.nn.bias_add(y, bt))

    rep_rng = np.random.default_rng(_seed(layer) ^ 0x5EED)
    samples = [rep_rng.uniform(DATA_MIN, DATA_MAX, shape).astype(np.float32) for _ in range(REPRESENTATIVE_SAMPLES)]
    # Hit the range ends exactly: input scale 0.01, zero point -3 (as Layer.spec()).
    samples[0].flat[0], samples[0].flat[-1] = DATA_MIN, DATA_MAX

    def representative():
        for x in samples:
            yield [x]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def check_model(layer, data: bytes) -> None:
    """The model is one op of the right kind, int8 in/out with the layer's shapes, per-channel weights."""
    import numpy as np
    import tensorflow as tf

    interp = tf.lite.Interpreter(
        model_content=data,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    (op,) = interp._get_ops_details()
    want = "DEPTHWISE_CONV_2D" if layer.kind == "depthwise" else "CONV_2D"
    assert op["op_name"] == want, (layer.name, op["op_name"])
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    oh = -(-layer.hw // layer.stride)
    assert inp["dtype"] == np.int8 and tuple(inp["shape"]) == (1, layer.hw, layer.hw, layer.cin), inp
    assert inp["quantization"][1] == DATA_ZERO_POINT, (layer.name, inp["quantization"])
    assert out["dtype"] == np.int8 and tuple(out["shape"]) == (1, oh, oh, layer.cout), out
    details = {t["index"]: t for t in interp.get_tensor_details()}
    data_in, w_in, b_in = (details[i] for i in op["inputs"])
    assert data_in["index"] == inp["index"] and w_in["dtype"] == np.int8 and b_in["dtype"] == np.int32, layer.name
    weights = [w_in]
    assert len(weights[0]["quantization_parameters"]["scales"]) == layer.cout, layer.name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    ap.add_argument("--check", action="store_true", help="do not write: fail if a file would change")
    args = ap.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    layers = all_layers(load_networks())
    args.out.mkdir(parents=True, exist_ok=True)
    changed, total = [], 0
    for layer in layers:
        data = make_model(layer)
        check_model(layer, data)
        path = args.out / f"{layer.name}.tflite"
        total += len(data)
        if path.is_file() and path.read_bytes() == data:
            status = "same"
        else:
            changed.append(path.name)
            status = "DIFFERS" if args.check else "written"
            if not args.check:
                path.write_bytes(data)
        print(f"{layer.name:40s} {len(data):9d} B  {status}", flush=True)
    print(f"{len(layers)} models, {total} bytes, tensorflow {tf.__version__}")
    if args.check and changed:
        print(f"{len(changed)} model(s) differ: {' '.join(changed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
