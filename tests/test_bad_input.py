"""Invalid layer descriptions fail early with an error that names the argument."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tir_armq.workloads import conv_spec, depthwise_spec

DW = dict(data_shape=(1, 8, 8, 16), weight_shape=(1, 3, 3, 16))
CONV = dict(data_shape=(1, 8, 8, 16), weight_shape=(8, 3, 3, 16))

# (id, builder, overrides, exception, words the message must contain)
BAD = [
    ("dw-float-data", depthwise_spec, dict(data_dtype="float32"), TypeError, "data_dtype"),
    ("dw-int16-weight", depthwise_spec, dict(weight_dtype="int16"), TypeError, "weight_dtype"),
    ("dw-dtype-not-str", depthwise_spec, dict(data_dtype=np.int8), TypeError, "data_dtype"),
    ("dw-zero-height", depthwise_spec, dict(data_shape=(1, 0, 8, 16)), ValueError, "data_shape"),
    ("dw-3d-data", depthwise_spec, dict(data_shape=(8, 8, 16)), ValueError, "data_shape"),
    ("dw-negative-stride", depthwise_spec, dict(stride=-1), ValueError, "stride"),
    ("dw-zero-dilation", depthwise_spec, dict(dilation=(1, 0)), ValueError, "dilation"),
    ("dw-weight-not-multiple", depthwise_spec, dict(weight_shape=(1, 3, 3, 24)), ValueError, "weight_shape"),
    ("dw-weight-leading-axis", depthwise_spec, dict(weight_shape=(2, 3, 3, 16)), ValueError, "weight_shape"),
    ("dw-kernel-too-large", depthwise_spec, dict(weight_shape=(1, 9, 3, 16)), ValueError, "kernel"),
    ("dw-dilated-too-large", depthwise_spec, dict(dilation=4), ValueError, "kernel"),
    ("dw-data-zp-range", depthwise_spec, dict(data_zero_point=128), ValueError, "data_zero_point"),
    ("dw-uint8-zp-negative", depthwise_spec, dict(data_dtype="uint8", data_zero_point=-1), ValueError,
     "data_zero_point"),
    ("dw-weight-zp-range", depthwise_spec, dict(weight_zero_point=-129), ValueError, "weight_zero_point"),
    ("dw-per-channel-zp-length", depthwise_spec, dict(weight_zero_point=[0] * 15), ValueError,
     "weight_zero_point"),
    ("dw-per-channel-zp-range", depthwise_spec,
     dict(weight_dtype="uint8", weight_zero_point=[0] * 15 + [256]), ValueError, "weight_zero_point"),
    ("dw-zp-float", depthwise_spec, dict(data_zero_point=1.5), TypeError, "data_zero_point"),
    ("dw-padding-word", depthwise_spec, dict(padding="FULL"), ValueError, "padding"),
    ("dw-padding-negative", depthwise_spec, dict(padding=(1, -1, 0, 0)), ValueError, "padding"),
    ("dw-padding-3-values", depthwise_spec, dict(padding=(1, 1, 1)), ValueError, "padding"),
    ("conv-float-data", conv_spec, dict(data_dtype="float16"), TypeError, "data_dtype"),
    ("conv-ic-mismatch", conv_spec, dict(weight_shape=(8, 3, 3, 15)), ValueError, "weight_shape"),
    ("conv-zero-out-channels", conv_spec, dict(weight_shape=(0, 3, 3, 16)), ValueError, "weight_shape"),
    ("conv-kernel-too-large", conv_spec, dict(weight_shape=(8, 3, 11, 16)), ValueError, "kernel"),
    ("conv-weight-zp-range", conv_spec, dict(weight_dtype="uint8", weight_zero_point=300), ValueError,
     "weight_zero_point"),
    ("conv-per-channel-zp-length", conv_spec, dict(weight_zero_point=[1, 2]), ValueError,
     "weight_zero_point"),
]


@pytest.mark.parametrize("builder, overrides, exc, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_argument_is_named(builder, overrides, exc, words):
    base = DW if builder is depthwise_spec else CONV
    with pytest.raises(exc, match=words):
        builder(**{**base, **overrides})


def test_kernel_exactly_as_large_as_padded_input_is_accepted():
    spec = depthwise_spec((1, 1, 1, 4), (1, 3, 3, 4), padding="SAME")
    assert spec.out_shape == (1, 1, 1, 4)


@pytest.mark.parametrize(
    "which, make, exc",
    [
        ("data", lambda s: np.zeros((1, 8, 8, 15), "int8"), ValueError),
        ("data", lambda s: np.zeros(s.data_shape, "uint8"), TypeError),
        ("weight", lambda s: np.zeros((1, 3, 3, 16, 1), "int8"), ValueError),
        ("bias", lambda s: np.zeros(16, "int64"), TypeError),
    ],
)
def test_wrong_input_arrays_are_named(which, make, exc):
    spec = depthwise_spec(**DW)
    arrays = dict(
        data=np.zeros(spec.data_shape, "int8"),
        weight=np.zeros(spec.weight_shape, "int8"),
        bias=np.zeros(spec.out_channels, "int32"),
    )
    arrays[which] = make(spec)
    with pytest.raises(exc, match=which):
        spec.check_inputs(**arrays)


def test_no_default_schedule_for_foreign_func():
    import tvm
    from tvm.script import tirx as T

    from tir_armq.kernels import fixed_schedule

    @T.prim_func(s_tir=True)
    def add(a: T.Buffer((4,), "int32"), b: T.Buffer((4,), "int32")):
        for i in range(4):
            with T.sblock("b"):
                vi = T.axis.remap("S", [i])
                b[vi] = a[vi] + 1

    with pytest.raises(ValueError, match="no kernel variant"):
        fixed_schedule(add, tvm.target.Target("llvm"))


def test_tune_names_a_kernel_the_model_does_not_have(tmp_path, capsys):
    """`tune --model --kernels` with a name that is none of the model's kernels: an error that lists
    the model's kernels, before any tuning starts."""
    from tir_armq.cli import main

    model = Path(__file__).parents[1] / "tir_armq" / "models" / "mobilenet_v1_025_96_int8.tflite"
    wanted = "conv_c2_nope: not a kernel of .* its kernels: .*dwconv_int8_mla8_3x3s1"
    with pytest.raises(SystemExit, match=wanted):
        main(["tune", "--model", str(model), "--kernels", "conv_c2_nope", "--db", str(tmp_path),
              "--trials", "1"])
    assert not any(tmp_path.iterdir())
