"""TFLite's requantize: the numpy reference against a literal transcription of TFLite's C, and the
requantize kernels (portable on the host, SQRDMULH/SRSHL on the aarch64 board, VQRDMULH/VRSHL on
ARMv7) against the reference over the whole int32 range, saturation edges included."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tvm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tir_armq.build import assembly, compile_default
from tir_armq.requantize import (
    INT32_MAX,
    INT32_MIN,
    RequantizeParams,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)
from tir_armq.targets import AARCH64_A72, ARMV7_A7
from tir_armq.workloads.requantize import OP_NAME, requantize_nhwc

EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30), -2, -1, 0, 1, 2, 2**30, INT32_MAX - 1, INT32_MAX]
int32s = st.one_of(st.sampled_from(EDGES), st.integers(INT32_MIN, INT32_MAX))
multipliers = st.one_of(st.sampled_from([0, 2**30, 2**31 - 1]), st.integers(0, INT32_MAX))
shifts = st.integers(-31, 30)


# --- a line-by-line transcription of TFLite's integer C, on Python ints -------------------------

def _c_int32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def _srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)  # C's int64 division truncates toward zero


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def _rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _mbqm(x: int, multiplier: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return _rdbpot(_srdhm(_c_int32(x * (1 << left)), multiplier), right)


@settings(max_examples=400, deadline=None)
@given(x=int32s, multiplier=multipliers, shift=shifts)
def test_reference_is_tflite_arithmetic(x, multiplier, shift):
    got = multiply_by_quantized_multiplier(np.array([x], np.int32), np.array([multiplier]), np.array([shift]))
    assert int(got[0]) == _mbqm(x, multiplier, shift)


@pytest.mark.parametrize(
    "real, expected",
    [(0.5, (2**30, 0)), (1.0, (2**30, 1)), (0.25, (2**30, -1)), (0.0, (0, 0)), (2.0**-40, (0, 0)),
     # rounds up to 2**31: halved, exponent + 1
     (1.0 - 2.0**-33, (2**30, 1))],
)
def test_quantize_multiplier_known_values(real, expected):
    assert quantize_multiplier(real) == expected


@settings(max_examples=200, deadline=None)
@given(real=st.floats(min_value=2.0**-30, max_value=2.0**20, allow_nan=False))
def test_quantize_multiplier_is_close(real):
    m, s = quantize_multiplier(real)
    assert 2**30 <= m < 2**31
    assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=2.0**-30)


def test_params_reject_bad_values():
    with pytest.raises(ValueError, match="clamp"):
        RequantizeParams(np.zeros(4, np.int32), np.zeros(4, np.int32), 0, (10, -10))
    with pytest.raises(ValueError, match="output_zero_point"):
        RequantizeParams(np.zeros(4, np.int32), np.zeros(4, np.int32), 200, (-128, 127))
    with pytest.raises(ValueError, match="shift"):
        RequantizeParams(np.zeros(4, np.int32), np.full(4, 31, np.int32), 0, (-128, 127))
    with pytest.raises(ValueError, match="output_dtype"):
        RequantizeParams(np.zeros(4, np.int32), np.zeros(4, np.int32), 0, (0, 1), "int16")
    with pytest.raises(TypeError, match="acc"):
        requantize(np.zeros((2, 4), np.int64), RequantizeParams(np.zeros(4, np.int32), np.zeros(4, np.int32), 0, (0, 1)))


# --- the kernels ---------------------------------------------------------------------------------

# (shape, output dtype): 16/8/4-lane intrinsics, and C = 6 which no vector width tiles (scalar form).
KERNEL_TABLE = [((1, 3, 5, 32), "int8"), ((1, 4, 4, 24), "uint8"), ((2, 3, 12), "int8"), ((5, 6), "uint8")]


def _case(shape, out_dtype, rng: np.random.Generator):
    channels = shape[-1]
    acc = rng.integers(INT32_MIN, INT32_MAX, shape, dtype=np.int64, endpoint=True).astype(np.int32)
    flat = acc.reshape(-1)
    flat[: len(EDGES)] = EDGES[: flat.size]
    multiplier = rng.integers(0, INT32_MAX, channels, endpoint=True).astype(np.int32)
    shift = rng.integers(-31, 30, channels, endpoint=True).astype(np.int32)
    multiplier[:2] = [INT32_MAX, 2**30][: channels]
    shift[:3] = [-31, 30, 0][: channels]
    lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
    zero_point = int(rng.integers(lo, hi, endpoint=True))
    clamp = tuple(sorted(int(v) for v in rng.integers(lo, hi, 2, endpoint=True)))
    params = RequantizeParams(multiplier, shift, zero_point, clamp, out_dtype)
    args = [acc, multiplier, shift, params.offset_clamp(), np.zeros(shape, out_dtype)]
    return args, requantize(acc, params)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), row=st.sampled_from(KERNEL_TABLE))
def test_host_kernel_matches_reference(seed, row):
    shape, out_dtype = row
    args, expected = _case(shape, out_dtype, np.random.default_rng(seed))
    ex = compile_default(requantize_nhwc(shape, out_dtype))
    tensors = [tvm.runtime.tensor(a) for a in args]
    ex[OP_NAME](*tensors)
    np.testing.assert_array_equal(tensors[-1].numpy(), expected)


@pytest.mark.board
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), row=st.sampled_from(KERNEL_TABLE))
def test_aarch64_kernel_matches_reference(seed, row, board_key):
    from tir_armq.board.emulated import run_on_board

    shape, out_dtype = row
    args, expected = _case(shape, out_dtype, np.random.default_rng(seed))
    ex = compile_default(requantize_nhwc(shape, out_dtype), AARCH64_A72)
    np.testing.assert_array_equal(run_on_board(ex, OP_NAME, args, key=board_key)[-1], expected)


@pytest.mark.armv7
@pytest.mark.parametrize("row", KERNEL_TABLE, ids=[f"{s}-{d}" for s, d in KERNEL_TABLE])
def test_armv7_kernel_matches_reference(row):
    from tir_armq.board.armv7 import run_armv7

    shape, out_dtype = row
    args, expected = _case(shape, out_dtype, np.random.default_rng(7))
    ex = compile_default(requantize_nhwc(shape, out_dtype), ARMV7_A7)
    np.testing.assert_array_equal(run_armv7(ex, OP_NAME, args)[-1], expected)


@pytest.mark.parametrize(
    "target, needed",
    [(AARCH64_A72, ("sqrdmulh", "srshl", "sqadd")), (ARMV7_A7, ("vqrdmulh.s32", "vrshl.s32", "vqadd.s32"))],
    ids=["aarch64", "armv7"],
)
def test_requantize_uses_fixed_point_neon(target, needed):
    """32-bit saturating/rounding NEON forms, no 64-bit multiply anywhere in the kernel."""
    asm = assembly(requantize_nhwc((1, 4, 4, 32)), target)
    mnemonics = {line.split()[0] for line in asm.splitlines() if line.startswith("\t") and not line.startswith("\t.")}
    for mnemonic in needed:
        assert mnemonic in mnemonics, f"{mnemonic} missing from the requantize kernel"
    assert not mnemonics & {"smulh", "smull", "umulh", "smlal", "vmull.s32", "smull.w", "smmul"}
