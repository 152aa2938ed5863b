"""`softmax_q8`: TFLite's 8-bit SOFTMAX as LiteRT's builtin kernel computes it on AArch64 (its table of
exponentials, the float inverse of their sum as a Q31 multiplier). The kernel against its numpy twin
on the host (hypothesis over data and quantization), the twin's table against the formula, and the
model on the board against the interpreter on the inputs where the rounding of the product decides
the output; a SOFTMAX whose beta the frontend would drop is refused."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import tflite
import tvm
from hypothesis import given, settings
from hypothesis import strategies as st

from tir_armq.build import compile_default
from tir_armq.kernels import SOFTMAX_Q8
from tir_armq.model.tflite_import import ModelError, load_tflite
from tir_armq.workloads.params import dtype_range
from tir_armq.workloads.softmax import inverse_sum_multiplier, softmax_reference, softmax_table

from tiny_tflite import Graph, serialize

MODEL = Path(__file__).resolve().parent.parent / "tir_armq" / "models" / "op_softmax.tflite"
SHAPES = ((1, 100, "int8"), (2, 37, "uint8"), (1, 1000, "int8"))


@cache
def _host_kernel(n: int, c: int, dtype: str):
    func = SOFTMAX_Q8.build((n, c), dtype)
    return compile_default(func).mod[str(func.attrs["global_symbol"])]


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**32 - 1),
       input_scale=st.floats(0.002, 0.5), spread=st.integers(0, 255))
def test_kernel_is_its_numpy_twin(shape, seed, input_scale, spread):
    n, c, dtype = shape
    lo, hi = dtype_range(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(hi - spread, hi, (n, c), endpoint=True).astype(dtype)
    zero_point = lo  # TFLite's softmax output: scale 1/256, the range's low end as zero point
    table = softmax_table(input_scale)
    args = [x, table, np.array([1 / 256], np.float32), np.array([zero_point], np.int32), np.zeros_like(x)]
    tensors = [tvm.runtime.tensor(a) for a in args]
    _host_kernel(n, c, dtype)(*tensors)
    np.testing.assert_array_equal(tensors[-1].numpy(), softmax_reference(x, table, 1 / 256, zero_point))


def test_table_and_inverse_follow_the_formulas():
    table = softmax_table(0.05)
    assert table[255] == 65535 and (np.diff(table) >= 0).all()
    assert table[0] == int(np.float32(np.exp(np.float32(0.05) * np.float32(-255))) * np.float32(65535) + 0.5)
    multiplier, shift = inverse_sum_multiplier(np.array([65535 * 3]), 1 / 256)
    real = 1 / (65535 * 3 / 256)
    assert 2**30 <= multiplier[0] < 2**31
    assert multiplier[0] * 2.0 ** (int(shift[0]) - 31) == pytest.approx(real, rel=2**-23)


def _rounding_edges(count: int) -> list[np.ndarray]:
    """Inputs of the committed model on which rounding e * multiplier once (ruy's form) gives another
    output than rounding it twice (SQRDMULH, then the shift): what pins the arithmetic."""
    model = load_tflite(MODEL)
    (info,), (out,) = model.inputs, model.outputs
    table = softmax_table(info.scale)
    rng = np.random.default_rng(5)
    found = []
    for _ in range(100_000):  # about one input in 300 is an edge
        x = rng.integers(rng.integers(-128, 120), 127, info.shape, endpoint=True).astype(info.dtype)
        once, twice = (softmax_reference(x, table, out.scale, out.zero_point, rounding=r)
                       for r in ("single", "away"))
        if (once != twice).any():
            found.append(x)
            if len(found) == count:
                return found
    raise AssertionError(f"{len(found)} rounding edges in 100000 random inputs")


@pytest.mark.board
def test_model_matches_litert_at_rounding_edges(tmp_path, board_key):
    from tir_armq.bench.litert import run_litert_guest
    from tir_armq.model.build import build_model
    from tir_armq.model.run import run_model
    from tir_armq.targets import AARCH64_A72

    built = build_model(MODEL, AARCH64_A72, db_roots=())
    assert [k.variant for k in built.kernel_records] == ["softmax_q8"]
    library = built.export(tmp_path / "softmax.so")
    for x in _rounding_edges(3):
        np.save(tmp_path / "x.npy", x)
        run_litert_guest(MODEL, warmup=0, invokes=1, xnnpack=False, input=tmp_path / "x.npy",
                         out=tmp_path / "y.npy")
        np.testing.assert_array_equal(run_model(library, x, key=board_key), np.load(tmp_path / "y.npy"))


def test_softmax_with_another_beta_is_refused(tmp_path):
    g = Graph()
    x = g.tensor((1, 10), "int8", quantization=(0.1, 0))
    y = g.tensor((1, 10), "int8", quantization=(1 / 256, -128))
    g.op(tflite.BuiltinOperator.SOFTMAX, [x], [y], (tflite.BuiltinOptions.SoftmaxOptions, {"Beta": 2.0}))
    g.inputs, g.outputs = [x], [y]
    path = tmp_path / "beta2.tflite"
    path.write_bytes(serialize(g))
    with pytest.raises(ModelError, match="beta 2.0"):
        load_tflite(path)
