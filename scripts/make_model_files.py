"""Write the test TFLite models in tir_armq/models/: MobileNetV2 int8 and uint8, MobileNet (V1), odd layers.

A one-off developer script, not part of set-up or CI: the models are committed. To regenerate
(TensorFlow is needed only here):

    python3 -m venv ~/.cache/tir_armq/tfvenv
    ~/.cache/tir_armq/tfvenv/bin/pip install tensorflow-cpu
    ~/.cache/tir_armq/tfvenv/bin/python scripts/make_model_files.py [--out tir_armq/models] [--check]
    ~/.cache/tir_armq/tfvenv/bin/python scripts/make_model_files.py --full-size DIR [--check]

Two ways of converting a Keras model appear below. Most models go through a tf.function whose
input signature fixes the batch to 1 (`from_concrete_functions`): every shape is static and the
converter folds all shape arithmetic. Users call `TFLiteConverter.from_keras_model`, which keeps
Keras' open batch dimension (shape_signature -1): a Keras Reshape then keeps `tf.shape(x)[0]` in
the graph as SHAPE -> STRIDED_SLICE -> PACK feeding RESHAPE's shape (MobileNet V1's classifier
has one; MobileNetV2 has none). `mobilenet_v1_025_96_int8_from_keras` and the full-size models are
made that way, so the model build's SHAPE folding is tested on what users have.

Files written (16 models, about 2 MB in all, ~40 s; weights random from fixed seeds: there are no
pretrained weights offline, and these models test compilation and numerics, not accuracy):

* `mobilenet_v2_035_96_int8.tflite`: Keras `MobileNetV2(input_shape=(96, 96, 3), alpha=0.35,
  weights=None, classes=100)` (100 classes, not 1000, keeps the classifier at 128 K weights instead
  of 1.28 M). Conv and dense kernels are He-normal from a numpy seed; the BatchNorm layers get
  non-trivial statistics (calibrated layer by layer on the representative images, then perturbed:
  gamma, beta, moving mean and variance all vary per channel), so requantize scales differ per
  channel. Full-integer quantization as TFLite does it now: Optimize.DEFAULT, 8 seeded random images
  in [-1, 1] as representative dataset, TFLITE_BUILTINS_INT8, int8 input and output, symmetric
  per-channel int8 weights. 65 ops: CONV_2D x35 (18 with fused RELU6, the 17 projections linear),
  DEPTHWISE_CONV_2D x17 (RELU6), ADD x10, MEAN, FULLY_CONNECTED, SOFTMAX; the converter folds
  Keras' ZeroPadding2D + VALID before the stride-2 depthwise layers into SAME padding (no PAD).
* `mobilenet_v2_035_96_uint8.tflite`: the same network and weights in the old (QNNPACK-era)
  scheme: uint8 activations and uint8 weights with an asymmetric per-tensor zero point. TF2's
  converter no longer makes these from a float model, so the network is rebuilt from the Keras
  layers as a TF1 graph (BatchNorm folded into the convolutions) with fake-quant nodes, as
  quantization-aware training leaves them: on every (folded) weight tensor its min/max, on ReLU6
  outputs [0, 6], on the other activations (linear bottlenecks, residual adds, pooled features,
  logits) min/max calibrated on the representative images. `tf.compat.v1.lite.TFLiteConverter
  .from_session` with `inference_type=tf.uint8` and `quantized_input_stats` (input scale 1/128,
  zero point 128) turns it into a uint8 model with the same 65 ops (no QUANTIZE/DEQUANTIZE).
* `mobilenet_v1_025_96_int8.tflite`: Keras `MobileNet(input_shape=(96, 96, 3), alpha=0.25,
  weights=None, classes=100)`, seeded and calibrated the same way, int8 scheme as above. 31 ops:
  CONV_2D x15 (the 3x3 stem, 13 pointwise, the 1x1 classifier), DEPTHWISE_CONV_2D x13, MEAN
  (keep_dims), RESHAPE, SOFTMAX.
* `mobilenet_v1_025_96_int8_from_keras.tflite`: the same network and weights converted as users do
  (`from_keras_model`, the same int8 settings and calibration images): 34 ops, the 31 above plus
  SHAPE, STRIDED_SLICE and PACK computing the RESHAPE's shape (batch size, 100) at run time.
* `dw_*.tflite`: single DEPTHWISE_CONV_2D layers with awkward shapes (see DW_LAYERS), built with
  tf.keras DepthwiseConv2D, bias, fused RELU6 or none; `conv_*_linear.tflite`: single CONV_2D
  layers without activation (negative requantize ties stay visible); `op_*.tflite`: MobileNet's
  other ops (residual ADD after a 1x1 conv, twice: 576 and 150 elements, spatial MEAN,
  FULLY_CONNECTED, SOFTMAX) one model each;
  `float_dw_c8.tflite`: a float32 model (bad input for the model build); int8 input (zero point -3) and output,
  symmetric per-channel int8 weights, quantized like scripts/make_layer_models.py does.

`--full-size DIR` writes only these two (not committed, for benchmarks; ~25 s), made as a user makes
them (the recipe of the team's first full-size model: Keras' own initializers after
`set_random_seed(1)`, 4 calibration images uniform in [-1, 1] from numpy's `default_rng(0)`,
`from_keras_model`, int8 settings as above):

* `mnv2_100_224_int8.tflite`: Keras `MobileNetV2(input_shape=(224, 224, 3), alpha=1.0,
  weights=None, classes=1000)`, 65 ops as the 0.35 model (3.9 MB).
* `mnv1_100_224_int8.tflite`: Keras `MobileNet(...)` likewise, 34 ops with SHAPE as the
  from_keras model above (4.5 MB).

Weights, BatchNorm statistics and representative data come from fixed seeds (and
`enable_op_determinism`), so a re-run on the same machine writes byte-identical files (`--check`
verifies that without writing). Another machine may compute the float calibration differently in
the last bits: the committed MobileNet models re-made on a second machine had scales within 1.2e-5
(relative) and weights and biases within 1 of these, so `--check` names them there; that changes
numbers, not what the models test.
Each model is also loaded in the TFLite interpreter, run once on a random input, and checked (op
types, dtypes, shapes, weight quantization); its op list and input/output quantization are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DEFAULT = REPO / "tir_armq" / "models"
REPRESENTATIVE_SAMPLES = 8

MNV2_HW, MNV2_ALPHA, MNV2_CLASSES = 96, 0.35, 100
MNV2_INT8 = "mobilenet_v2_035_96_int8"
MNV1_HW, MNV1_ALPHA, MNV1_CLASSES = 96, 0.25, 100
MNV1_INT8 = "mobilenet_v1_025_96_int8"
# The same network and weights converted as users convert a Keras model (from_keras_model): SHAPE.
MNV1_INT8_FROM_KERAS = "mobilenet_v1_025_96_int8_from_keras"

# --full-size DIR: the Keras applications at 224x224, alpha 1.0, 1000 classes (not committed:
# 3.5-4.5 MB each), made with the recipe of the team's first user model (Keras' own initializers
# after set_random_seed(1); 4 calibration images uniform in [-1, 1] from numpy's default_rng(0)),
# so the MobileNetV2 file is byte for byte the one the benchmarks were first run on.
FULL_HW, FULL_CLASSES, FULL_SEED, FULL_SAMPLES = 224, 1000, 1, 4
FULL_SIZE = (("mnv2_100_224_int8", "MobileNetV2"), ("mnv1_100_224_int8", "MobileNet"))
MNV2_UINT8 = "mobilenet_v2_035_96_uint8"
# uint8 model input: real = (q - 128) / 128, i.e. scale 1/128, zero point 128 (the classic
# quantized MobileNet input).
UINT8_INPUT_MEAN, UINT8_INPUT_STD = 128.0, 128.0

# Depthwise models: input range as make_layer_models.py (scale 0.01, zero point -3).
DW_DATA_MIN, DW_DATA_MAX = -1.25, 1.30
DW_DATA_ZERO_POINT = -3


@dataclass(frozen=True)
class DwLayer:
    name: str
    hw: int
    channels: int
    kernel: int
    stride: int
    multiplier: int
    padding: str  # "same" or "valid"
    relu6: bool
    filters: int = 0  # > 0: a dense CONV_2D with this many filters instead of a depthwise layer

    @property
    def op(self) -> str:
        return "CONV_2D" if self.filters else "DEPTHWISE_CONV_2D"

    @property
    def out_channels(self) -> int:
        return self.filters or self.channels * self.multiplier

    def out_hw(self) -> int:
        if self.padding == "same":
            return -(-self.hw // self.stride)
        return (self.hw - self.kernel) // self.stride + 1


DW_LAYERS = (
    DwLayer("dw_c100_s1_3x3", 14, 100, 3, 1, 1, "same", relu6=True),
    DwLayer("dw_c32_s2_3x3", 15, 32, 3, 2, 1, "same", relu6=False),
    DwLayer("dw_c24_s1_5x5", 12, 24, 5, 1, 1, "same", relu6=True),
    DwLayer("dw_c16_m2_3x3", 10, 16, 3, 1, 2, "valid", relu6=False),
    # Linear convolutions (MobileNetV2's projections have no activation): their negative
    # requantize ties are not clamped away, so these show which rounding the kernels use.
    DwLayer("conv_c24_1x1_linear", 12, 24, 1, 1, 1, "same", relu6=False, filters=40),
    DwLayer("conv_c8_3x3_s2_linear", 13, 8, 3, 2, 1, "same", relu6=False, filters=16),
)


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


# --------------------------------------------------------------------------- MobileNetV2


def build_mobilenet_v2():
    """The seeded float Keras MobileNetV2 and its representative images (8, 96, 96, 3) in [-1, 1]."""
    import tensorflow as tf

    return _seeded_keras_net("mobilenet_v2", MNV2_HW, lambda: tf.keras.applications.MobileNetV2(
        input_shape=(MNV2_HW, MNV2_HW, 3), alpha=MNV2_ALPHA, weights=None, classes=MNV2_CLASSES))


def build_mobilenet_v1():
    """The seeded float Keras MobileNet (V1) and its representative images (8, 96, 96, 3)."""
    import tensorflow as tf

    return _seeded_keras_net("mobilenet_v1", MNV1_HW, lambda: tf.keras.applications.MobileNet(
        input_shape=(MNV1_HW, MNV1_HW, 3), alpha=MNV1_ALPHA, weights=None, classes=MNV1_CLASSES))


def _seeded_keras_net(name: str, hw: int, factory):
    """A Keras application with He-normal kernels and calibrated, perturbed BatchNorm statistics
    from seeds derived from `name`, and its representative images in [-1, 1]."""
    import keras
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(_seed(name))
    model = factory()
    rng = np.random.default_rng(_seed(f"{name}/weights"))
    samples = np.random.default_rng(_seed(f"{name}/data")).uniform(
        -1.0, 1.0, (REPRESENTATIVE_SAMPLES, hw, hw, 3)
    ).astype(np.float32)
    samples[0].flat[0], samples[0].flat[-1] = -1.0, 1.0

    # Kernels first (He normal), independent of Keras' initializers.
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            weights = layer.get_weights()
            k = weights[0]
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                fan_in = k.shape[0] * k.shape[1]
            else:
                fan_in = int(np.prod(k.shape[:-1]))
            weights[0] = (rng.standard_normal(k.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
            if len(weights) > 1:
                weights[1] = (rng.standard_normal(weights[1].shape) * 0.1).astype(np.float32)
            layer.set_weights(weights)

    # BatchNorm: in network order, measure the statistics of the BN input on the representative
    # images (with the BN layers before already set) and set perturbed ones, so that activations
    # stay in a sane range but scale and shift vary per channel.
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        probe = keras.Model(model.input, layer.input)
        a = np.asarray(probe(samples, training=False), dtype=np.float64)
        mean, var = a.mean(axis=(0, 1, 2)), a.var(axis=(0, 1, 2))
        n = mean.shape[0]
        gamma = rng.uniform(0.5, 1.5, n)
        beta = rng.normal(0.2, 0.4, n)
        moving_mean = mean + 0.2 * np.sqrt(var) * rng.standard_normal(n)
        moving_var = (var + 1e-4) * rng.uniform(0.5, 2.0, n)
        layer.set_weights([w.astype(np.float32) for w in (gamma, beta, moving_mean, moving_var)])
    return model, samples


def _frozen(f):
    """The concrete function of tf.function `f` with the (Keras 3) variables made constants."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(f.get_concrete_function())


def _full_integer(conv, representative) -> bytes:
    """`conv` (a TFLiteConverter) run with full-integer int8 quantization, as users set it up:
    Optimize.DEFAULT, a representative dataset, TFLITE_BUILTINS_INT8, int8 input and output
    (symmetric per-channel int8 weights)."""
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _convert_int8(f, model, samples) -> bytes:
    """Full-integer int8 conversion of tf.function `f`, whose input signature fixes every dimension
    (batch 1): the converter folds all shape arithmetic, the model has no SHAPE op."""
    import tensorflow as tf

    def representative():
        for x in samples:
            yield [x]

    return _full_integer(tf.lite.TFLiteConverter.from_concrete_functions([_frozen(f)], model), representative)


def make_keras_model_int8(model, representative) -> bytes:
    """Full-integer int8 conversion of a Keras model as users convert one: `from_keras_model`, which
    traces the model with its open batch dimension (None). Every tensor's shape_signature then
    starts with -1, and a Keras Reshape keeps `tf.shape(x)[0]` as SHAPE, STRIDED_SLICE and PACK in
    front of its RESHAPE. `representative`: the generator function of the calibration inputs."""
    import tensorflow as tf

    return _full_integer(tf.lite.TFLiteConverter.from_keras_model(model), representative)


def make_keras_int8(model, samples) -> bytes:
    """A seeded Keras network (batch 1) in TFLite's int8 scheme."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, *samples.shape[1:]), tf.float32)])
    def f(x):
        return model(x, training=False)

    return _convert_int8(f, model, samples[:, None])


def make_keras_user_int8(model, samples) -> bytes:
    """A seeded Keras network converted as users do (`make_keras_model_int8`), calibrated on `samples`."""

    def representative():
        for x in samples:
            yield [x[None]]

    return make_keras_model_int8(model, representative)


def make_full_size(application: str) -> bytes:
    """Keras' `application` (MobileNetV2 or MobileNet) at 224x224, alpha 1.0, 1000 classes, as a
    user makes it: Keras' initializers after set_random_seed(FULL_SEED), converted from_keras_model."""
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(FULL_SEED)
    model = getattr(tf.keras.applications, application)(
        input_shape=(FULL_HW, FULL_HW, 3), alpha=1.0, weights=None, classes=FULL_CLASSES)

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(FULL_SAMPLES):
            yield [rng.uniform(-1, 1, (1, FULL_HW, FULL_HW, 3)).astype(np.float32)]

    return make_keras_model_int8(model, representative)


def _folded(model):
    """{conv or dense layer name: (kernel, bias)} with each conv's BatchNorm folded in."""
    import keras
    import numpy as np

    consumers = {}
    for layer in model.layers:
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        for t in inputs:
            consumers.setdefault(t._keras_history.operation.name, []).append(layer)
    out = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            (bn,) = consumers[layer.name]
            assert isinstance(bn, keras.layers.BatchNormalization) and not layer.use_bias, layer.name
            gamma, beta, mean, var = (w.astype(np.float64) for w in bn.get_weights())
            scale = gamma / np.sqrt(var + bn.epsilon)
            (k,) = layer.get_weights()
            k = k.astype(np.float64)
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                assert k.shape[3] == 1, layer.name
                k = k * scale.reshape(1, 1, -1, 1)
            else:
                k = k * scale
            out[layer.name] = (k.astype(np.float32), (beta - mean * scale).astype(np.float32))
        elif isinstance(layer, keras.layers.Dense):
            k, b = layer.get_weights()
            out[layer.name] = (k, b)
    return out, consumers


def mnv2_graph(model, x, folded, consumers, ranges=None, record=None):
    """The MobileNetV2 forward pass of `model` in plain TF ops, BatchNorm folded.

    With `record` (a dict), float: store the min/max of every tensor that gets a fake-quant node.
    With `ranges`, insert fake-quant nodes: weights (their min/max), ReLU6 outputs ([0, 6]) and the
    other activations (`ranges[name]`).
    """
    import keras
    import tensorflow as tf

    def act(name, y, lo=None, hi=None):
        if record is not None:
            ymin, ymax = float(tf.reduce_min(y)), float(tf.reduce_max(y))
            old = record.get(name, (0.0, 0.0))
            record[name] = (min(old[0], ymin), max(old[1], ymax))
        if ranges is not None:
            lo, hi = (lo, hi) if lo is not None else ranges[name]
            y = tf.quantization.fake_quant_with_min_max_args(
                y, min=lo, max=hi, num_bits=8, name=f"{name}/act_quant"
            )
        return y

    def weight(name, w):
        if ranges is None:
            return tf.constant(w)
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
        return tf.quantization.fake_quant_with_min_max_args(
            tf.constant(w), min=lo, max=hi, num_bits=8, name=f"{name}/weights_quant"
        )

    values = {}
    for layer in model.layers:
        name = layer.name
        if isinstance(layer, keras.layers.InputLayer):
            values[name] = x
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        args = [values[t._keras_history.operation.name] for t in inputs]
        if isinstance(layer, keras.layers.Conv2D):
            k, b = folded[name]
            s = layer.strides
            y = tf.nn.conv2d(args[0], weight(name, k), [1, s[0], s[1], 1], layer.padding.upper())
            y = tf.nn.bias_add(y, tf.constant(b))
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            k, b = folded[name]
            s = layer.strides
            y = tf.nn.depthwise_conv2d(args[0], weight(name, k), [1, s[0], s[1], 1], layer.padding.upper())
            y = tf.nn.bias_add(y, tf.constant(b))
        elif isinstance(layer, keras.layers.BatchNormalization):
            # Folded into the conv before; quantize here unless a ReLU follows.
            y = args[0]
            if not any(isinstance(c, keras.layers.ReLU) for c in consumers.get(name, [])):
                y = act(name, y)
        elif isinstance(layer, keras.layers.ReLU):
            relu6 = (float(layer.max_value), float(layer.negative_slope), float(layer.threshold)) == (6.0, 0.0, 0.0)
            assert relu6, name
            y = act(name, tf.nn.relu6(args[0]), 0.0, 6.0)
        elif isinstance(layer, keras.layers.ZeroPadding2D):
            (t, bo), (le, r) = layer.padding
            y = tf.pad(args[0], [[0, 0], [t, bo], [le, r], [0, 0]])
        elif isinstance(layer, keras.layers.Add):
            y = act(name, tf.add(*args))
        elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
            y = act(name, tf.reduce_mean(args[0], axis=[1, 2]))
        elif isinstance(layer, keras.layers.Dense):
            k, b = folded[name]
            y = act(name, tf.nn.bias_add(tf.matmul(args[0], weight(name, k)), tf.constant(b)))
            assert layer.activation is keras.activations.softmax, layer.activation
            y = tf.nn.softmax(y)
        else:
            raise NotImplementedError(f"{name}: {type(layer).__name__}")
        values[name] = y
    return values[model.layers[-1].name]


def make_mnv2_uint8(model, samples) -> bytes:
    import numpy as np
    import tensorflow as tf

    tf1 = tf.compat.v1
    folded, consumers = _folded(model)
    record = {}
    y_float = np.asarray(mnv2_graph(model, tf.constant(samples), folded, consumers, record=record))
    y_keras = np.asarray(model(samples, training=False))
    err = float(np.abs(y_float - y_keras).max())
    assert err < 1e-4, f"BatchNorm folding: max |softmax difference| {err}"
    # Ranges include 0 (as TF's fake quant would nudge them to anyway).
    ranges = {k: (min(lo, 0.0), max(hi, 0.0)) for k, (lo, hi) in record.items()}

    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, (1, MNV2_HW, MNV2_HW, 3), name="input")
        y = tf.identity(mnv2_graph(model, x, folded, consumers, ranges=ranges), name="output")
        with tf1.Session(graph=graph) as sess:
            conv = tf1.lite.TFLiteConverter.from_session(sess, [x], [y])
            conv.inference_type = tf.uint8
            conv.inference_input_type = tf.uint8
            conv.quantized_input_stats = {"input": (UINT8_INPUT_MEAN, UINT8_INPUT_STD)}
            return conv.convert()


# --------------------------------------------------------------------------- depthwise layers


def make_dw(layer: DwLayer) -> bytes:
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(_seed(layer.name))
    k, c, m = layer.kernel, layer.channels, layer.multiplier
    activation = "relu6" if layer.relu6 else None
    if layer.filters:
        w = (rng.standard_normal((k, k, c, layer.filters)) * np.sqrt(2.0 / (k * k * c))).astype(np.float32)
        dw = keras.layers.Conv2D(layer.filters, k, strides=layer.stride, padding=layer.padding, use_bias=True,
                                 activation=activation)
    else:
        w = (rng.standard_normal((k, k, c, m)) * np.sqrt(2.0 / (k * k))).astype(np.float32)
        dw = keras.layers.DepthwiseConv2D(k, strides=layer.stride, padding=layer.padding, depth_multiplier=m,
                                          use_bias=True, activation=activation)
    b = (rng.standard_normal(layer.out_channels) * 0.1).astype(np.float32)
    inp = keras.Input((layer.hw, layer.hw, c), batch_size=1)
    model = keras.Model(inp, dw(inp))
    dw.set_weights([w, b])
    shape = (1, layer.hw, layer.hw, c)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def f(x):
        return model(x, training=False)

    rep_rng = np.random.default_rng(_seed(layer.name) ^ 0x5EED)
    samples = [rep_rng.uniform(DW_DATA_MIN, DW_DATA_MAX, shape).astype(np.float32) for _ in range(REPRESENTATIVE_SAMPLES)]
    samples[0].flat[0], samples[0].flat[-1] = DW_DATA_MIN, DW_DATA_MAX

    return _convert_int8(f, model, samples)


# --------------------------------------------------------------------------- other ops


# Small int8 models of the ops MobileNet has besides conv/depthwise, each isolated so that a
# mismatch names its op: name -> (input shape, op types expected, Keras body).
def _op_models():
    import keras

    def residual_add(x):
        y = keras.layers.Conv2D(x.shape[-1], 1, use_bias=True)(x)
        return keras.layers.Add()([x, y])

    def spatial_mean(x):
        return keras.layers.GlobalAveragePooling2D()(x)

    def dense(x):
        return keras.layers.Dense(24)(x)

    def softmax(x):
        return keras.layers.Softmax()(x)

    return {
        "op_add_residual": ((1, 6, 6, 16), ("CONV_2D", "ADD"), residual_add),
        # 150 elements: the kernel's NEON blocks of 16 and its scalar tail of 6
        "op_add_tail": ((1, 5, 5, 6), ("CONV_2D", "ADD"), residual_add),
        "op_mean_spatial": ((1, 5, 5, 40), ("MEAN",), spatial_mean),
        "op_fully_connected": ((1, 64), ("FULLY_CONNECTED",), dense),
        "op_softmax": ((1, 100), ("SOFTMAX",), softmax),
    }


OP_MODELS = ("op_add_residual", "op_add_tail", "op_mean_spatial", "op_fully_connected", "op_softmax")
FLOAT_MODEL = "float_dw_c8"  # a float32 model: what `tir-armq build` must refuse with a clear message


def make_float_model() -> bytes:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(_seed(FLOAT_MODEL) % 2**31)
    inp = keras.Input((6, 6, 8), batch_size=1)
    model = keras.Model(inp, keras.layers.DepthwiseConv2D(3, padding="same")(inp))

    @tf.function(input_signature=[tf.TensorSpec((1, 6, 6, 8), tf.float32)])
    def f(x):
        return model(x, training=False)

    return tf.lite.TFLiteConverter.from_concrete_functions([_frozen(f)], model).convert()


def check_float_model(data: bytes) -> None:
    import numpy as np

    interp = _interpreter(data)
    (inp,) = interp.get_input_details()
    assert inp["dtype"] == np.float32, inp
    print(f"  in  float32 {tuple(inp['shape'])}")


def make_op_model(name: str) -> bytes:
    import keras
    import numpy as np
    import tensorflow as tf

    shape, _, body = _op_models()[name]
    keras.utils.set_random_seed(_seed(name) % 2**31)
    inp = keras.Input(shape[1:], batch_size=1)
    model = keras.Model(inp, body(inp))

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def f(x):
        return model(x, training=False)

    rep_rng = np.random.default_rng(_seed(name) ^ 0x5EED)
    span = 4.0 if name == "op_softmax" else 1.0  # logits spread enough for a peaked softmax
    samples = [rep_rng.uniform(-span, span, shape).astype(np.float32) for _ in range(REPRESENTATIVE_SAMPLES)]

    return _convert_int8(f, model, samples)


def check_op_model(name: str, data: bytes) -> None:
    import numpy as np

    interp, ops = describe(name, data)
    _, want, _ = _op_models()[name]
    assert tuple(op["op_name"] for op in ops) == want, [op["op_name"] for op in ops]
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8, (inp, out)


# --------------------------------------------------------------------------- checks


def _interpreter(data: bytes):
    import tensorflow as tf

    interp = tf.lite.Interpreter(
        model_content=data,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    return interp


def _fmt_q(t) -> str:
    scale, zp = t["quantization"]
    return f"{t['dtype'].__name__} {tuple(int(d) for d in t['shape'])} scale {scale:.6g} zp {zp}"


def describe(name: str, data: bytes) -> tuple:
    """Run the model once on a random input; print op types and in/out quantization. -> interp, ops."""
    import numpy as np

    interp = _interpreter(data)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    info = np.iinfo(inp["dtype"])
    rng = np.random.default_rng(_seed(name) ^ 0xC0FFEE)
    x = rng.integers(info.min, info.max + 1, inp["shape"], dtype=inp["dtype"])
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    y = interp.get_tensor(out["index"])
    assert y.dtype == out["dtype"] and y.shape == tuple(out["shape"])
    ops = interp._get_ops_details()
    counts = Counter(op["op_name"] for op in ops)
    print(f"  in  {_fmt_q(inp)}\n  out {_fmt_q(out)}  (one run: output range {int(y.min())}..{int(y.max())})")
    print("  ops " + ", ".join(f"{k} x{v}" for k, v in counts.items()))
    return interp, ops


def _fused_activations(data: bytes) -> Counter:
    """Fused activation of each CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / ADD, from the flatbuffer."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    code_name = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    act_name = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
    counts = Counter()
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        opname = code_name[max(code.builtinCode, code.deprecatedBuiltinCode)]
        fused = getattr(op.builtinOptions, "fusedActivationFunction", None)
        if fused is not None:
            counts[f"{opname}:{act_name[fused]}"] += 1
    return counts


# MobileNet (V1)'s ops: 3x3 stem, 13 pointwise convs, the 1x1 classifier conv; global average
# pooling as MEAN; the classifier's Reshape. Converted from_keras_model, the Reshape's batch size
# comes from the graph: SHAPE, STRIDED_SLICE, PACK.
MNV1_OPS = Counter(CONV_2D=15, DEPTHWISE_CONV_2D=13, MEAN=1, RESHAPE=1, SOFTMAX=1)
SHAPE_OPS = Counter(SHAPE=1, STRIDED_SLICE=1, PACK=1)


def check_mnv1(name: str, data: bytes, model, samples, want_ops: Counter) -> None:
    import numpy as np

    interp, ops = describe(name, data)
    _compare_with_float(interp, model, samples)
    counts = Counter(op["op_name"] for op in ops)
    assert counts == want_ops, counts
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.int8 and tuple(inp["shape"]) == (1, MNV1_HW, MNV1_HW, 3), inp
    assert out["dtype"] == np.int8 and tuple(out["shape"]) == (1, MNV1_CLASSES), out


def check_full_size(name: str, data: bytes) -> None:
    import numpy as np

    interp, ops = describe(name, data)
    counts = Counter(op["op_name"] for op in ops)
    if name.startswith("mnv1"):
        assert counts == MNV1_OPS + SHAPE_OPS, counts
    else:
        assert counts == Counter(CONV_2D=35, DEPTHWISE_CONV_2D=17, ADD=10, MEAN=1, FULLY_CONNECTED=1,
                                 SOFTMAX=1), counts
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert inp["dtype"] == np.int8 and tuple(inp["shape"]) == (1, FULL_HW, FULL_HW, 3), inp
    assert out["dtype"] == np.int8 and tuple(out["shape"]) == (1, FULL_CLASSES), out


def _compare_with_float(interp, model, samples) -> None:
    """The quantized model is close to the float Keras model (on 4 of the representative images)."""
    import numpy as np

    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    (si, zi), (so, zo) = inp["quantization"], out["quantization"]
    info = np.iinfo(inp["dtype"])
    ref = np.asarray(model(samples[:4], training=False))
    corr, err = [], 0.0
    for x, r in zip(samples[:4], ref):
        interp.set_tensor(inp["index"], np.clip(np.round(x[None] / si + zi), info.min, info.max).astype(inp["dtype"]))
        interp.invoke()
        y = (interp.get_tensor(out["index"])[0].astype(np.float64) - zo) * so
        corr.append(float(np.corrcoef(y, r)[0, 1]))
        err = max(err, float(np.abs(y - r).max()))
    print(f"  vs float Keras model: softmax max |diff| {err:.4f}, correlation {min(corr):.3f}..{max(corr):.3f}"
          f" (float top-1 probability {float(ref.max(axis=1).mean()):.2f})")
    assert min(corr) > 0.75, corr  # a loose bound: random weights, 8-bit noise


def check_mnv2(name: str, data: bytes, dtype, model, samples) -> None:
    import numpy as np

    interp, ops = describe(name, data)
    _compare_with_float(interp, model, samples)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    fused = _fused_activations(data)
    print("  fused activations " + ", ".join(f"{k} x{v}" for k, v in sorted(fused.items())))
    assert inp["dtype"] == dtype and tuple(inp["shape"]) == (1, MNV2_HW, MNV2_HW, 3), inp
    assert out["dtype"] == dtype and tuple(out["shape"]) == (1, MNV2_CLASSES), out
    counts = Counter(op["op_name"] for op in ops)
    assert counts["CONV_2D"] == 35 and counts["DEPTHWISE_CONV_2D"] == 17 and counts["ADD"] == 10, counts
    assert counts["FULLY_CONNECTED"] == 1 and counts["SOFTMAX"] == 1, counts
    details = {t["index"]: t for t in interp.get_tensor_details()}
    zps = []
    for op in ops:
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        w = details[op["inputs"][1]]
        q = w["quantization_parameters"]
        assert w["dtype"] == dtype, (op, w["dtype"])
        if dtype == np.int8:  # symmetric per-channel (per output channel)
            assert np.all(q["zero_points"] == 0), w["name"]
            if op["op_name"] != "FULLY_CONNECTED":
                assert len(q["scales"]) == w["shape"][q["quantized_dimension"]] > 1, w["name"]
        else:  # asymmetric per-tensor
            assert len(q["scales"]) == 1, w["name"]
            zps.append(int(q["zero_points"][0]))
    if zps:
        print(f"  uint8 weight zero points: {len(zps)} tensors, {min(zps)}..{max(zps)}, "
              f"{sum(z != 128 for z in zps)} != 128")
        assert sum(z != 128 for z in zps) > len(zps) // 2, zps


def check_dw(layer: DwLayer, data: bytes) -> None:
    import numpy as np

    interp, ops = describe(layer.name, data)
    (op,) = ops
    assert op["op_name"] == layer.op, op
    fused = _fused_activations(data)
    want = "RELU6" if layer.relu6 else "NONE"
    assert fused == Counter({f"{layer.op}:{want}": 1}), fused
    print(f"  fused activation {want}")
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    oh, cout = layer.out_hw(), layer.out_channels
    assert inp["dtype"] == np.int8 and tuple(inp["shape"]) == (1, layer.hw, layer.hw, layer.channels), inp
    assert inp["quantization"][1] == DW_DATA_ZERO_POINT, inp["quantization"]
    assert out["dtype"] == np.int8 and tuple(out["shape"]) == (1, oh, oh, cout), out
    details = {t["index"]: t for t in interp.get_tensor_details()}
    data_in, w_in, b_in = (details[i] for i in op["inputs"])
    assert data_in["index"] == inp["index"] and w_in["dtype"] == np.int8 and b_in["dtype"] == np.int32
    w_shape = (cout, layer.kernel, layer.kernel, layer.channels) if layer.filters else (1, layer.kernel, layer.kernel, cout)
    assert tuple(w_in["shape"]) == w_shape, w_in["shape"]
    assert len(w_in["quantization_parameters"]["scales"]) == cout


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=OUT_DEFAULT, help="where the committed models go")
    where.add_argument("--full-size", type=Path, metavar="DIR",
                       help="write only the two full-size models (not committed) into DIR")
    ap.add_argument("--check", action="store_true", help="do not write: fail if a file would change")
    args = ap.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    import numpy as np
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()

    def jobs():
        model, samples = build_mobilenet_v2()
        yield (MNV2_INT8, lambda: make_keras_int8(model, samples),
               lambda d: check_mnv2(MNV2_INT8, d, np.int8, model, samples))
        yield (MNV2_UINT8, lambda: make_mnv2_uint8(model, samples),
               lambda d: check_mnv2(MNV2_UINT8, d, np.uint8, model, samples))
        for layer in DW_LAYERS:
            yield layer.name, lambda layer=layer: make_dw(layer), lambda d, layer=layer: check_dw(layer, d)
        for name in OP_MODELS:
            yield name, lambda name=name: make_op_model(name), lambda d, name=name: check_op_model(name, d)
        yield FLOAT_MODEL, make_float_model, check_float_model
        # Last: Keras numbers layers globally, and the models above keep the names they were made with.
        v1, v1_samples = build_mobilenet_v1()
        yield (MNV1_INT8, lambda: make_keras_int8(v1, v1_samples),
               lambda d: check_mnv1(MNV1_INT8, d, v1, v1_samples, MNV1_OPS))
        yield (MNV1_INT8_FROM_KERAS, lambda: make_keras_user_int8(v1, v1_samples),
               lambda d: check_mnv1(MNV1_INT8_FROM_KERAS, d, v1, v1_samples, MNV1_OPS + SHAPE_OPS))

    def full_size_jobs():
        for name, application in FULL_SIZE:
            yield (name, lambda app=application: make_full_size(app),
                   lambda d, name=name: check_full_size(name, d))

    out = args.full_size if args.full_size is not None else args.out
    if not args.check:
        out.mkdir(parents=True, exist_ok=True)
    changed, total, count = [], 0, 0
    for name, make, check in (full_size_jobs() if args.full_size is not None else jobs()):
        data = make()
        print(f"{name}.tflite", flush=True)
        check(data)
        path = out / f"{name}.tflite"
        total += len(data)
        count += 1
        if path.is_file() and path.read_bytes() == data:
            status = "same"
        else:
            changed.append(path.name)
            status = "DIFFERS" if args.check else "written"
            if not args.check:
                path.write_bytes(data)
        print(f"  {len(data)} B  {status}", flush=True)
    print(f"{count} models, {total} bytes, tensorflow {tf.__version__}")
    if args.check and changed:
        print(f"{len(changed)} model(s) differ: {' '.join(changed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
