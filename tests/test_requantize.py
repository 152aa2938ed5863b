"""TFLite's requantize: the numpy reference against a literal transcription of TFLite's C, and the
requantize kernels (portable on the host, SQRDMULH/SRSHL on the aarch64 board, VQRDMULH/VRSHL on
ARMv7) against the reference over the whole int32 range, saturation edges included."""

from __future__ import annotations

import math

import re

import numpy as np
import pytest
import tvm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tir_armq.build import assembly, compile_default
from tir_armq.kernels import REQUANTIZE_Q8
from tir_armq.requantize import (
    INT32_MAX,
    INT32_MIN,
    ROUNDINGS,
    RequantizeParams,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)
from tir_armq.targets import AARCH64_A72, ARMV7_A7

EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30), -2, -1, 0, 1, 2, 2**30, INT32_MAX - 1, INT32_MAX]
int32s = st.one_of(st.sampled_from(EDGES), st.integers(INT32_MIN, INT32_MAX))
# QuantizeMultiplier's range: 0 or a Q31 value in [2**30, 2**31).
multipliers = st.one_of(st.sampled_from([0, 2**30, 2**31 - 1]), st.integers(2**30, INT32_MAX))
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


def _mbqm(x: int, multiplier: int, shift: int, rounding: str) -> int:
    if rounding == "single":  # ruy's MultiplyByQuantizedMultiplier (int64), saturated to int32
        total = 31 - shift
        return max(INT32_MIN, min(INT32_MAX, (x * multiplier + (1 << (total - 1))) >> total))
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    high = _srdhm(_c_int32(x * (1 << left)), multiplier)
    if rounding == "upward":  # TFLite's DepthwiseConvRound<kUpward>, without int32 wrap
        return (high + ((1 << right) >> 1)) >> right
    return _rdbpot(high, right)


@settings(max_examples=600, deadline=None)
@given(x=int32s, multiplier=multipliers, shift=shifts, rounding=st.sampled_from(ROUNDINGS))
def test_reference_is_tflite_arithmetic(x, multiplier, shift, rounding):
    got = multiply_by_quantized_multiplier(np.array([x], np.int32), np.array([multiplier]), np.array([shift]),
                                           rounding)
    assert int(got[0]) == _mbqm(x, multiplier, shift, rounding)


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
        requantize(np.zeros((2, 4), np.int64),
                   RequantizeParams(np.zeros(4, np.int32), np.zeros(4, np.int32), 0, (0, 1)))


# --- the kernels ---------------------------------------------------------------------------------

# (shape, output dtype, rounding): 16/8/4-lane intrinsics, C = 6 which no vector width tiles
# (scalar form), every rounding.
KERNEL_TABLE = [((1, 3, 5, 32), "int8", "away"), ((1, 4, 4, 24), "uint8", "away"),
                ((2, 3, 12), "int8", "away"), ((5, 6), "uint8", "away"), ((1, 3, 5, 32), "int8", "upward"),
                ((2, 3, 12), "uint8", "upward"), ((1, 3, 5, 32), "int8", "single"),
                ((2, 3, 12), "uint8", "single"), ((5, 6), "int8", "single"),
                ((1, 3, 5, 32), "int8", "single_right"), ((2, 3, 12), "uint8", "single_right"),
                ((1, 3, 5, 32), "int8", "upward_right"), ((2, 3, 12), "uint8", "away_right"),
                ((1, 4, 4, 16), "int8", "away_right")]
KERNEL_IDS = ["-".join(map(str, row)) for row in KERNEL_TABLE]


def _workload(shape, out_dtype, rounding):
    """The requantize_q8 PrimFunc; "<rounding>_right": that rounding with the workload's
    right-shifts-only promise."""
    if rounding.endswith("_right"):
        return REQUANTIZE_Q8.build(shape, out_dtype, rounding.removesuffix("_right"), right_shifts=True)
    return REQUANTIZE_Q8.build(shape, out_dtype, rounding)


def _symbol(func) -> str:
    return str(func.attrs["global_symbol"])


def _case(shape, out_dtype, rounding, rng: np.random.Generator):
    channels = shape[-1]
    right_only = rounding.endswith("_right")
    rounding = rounding.removesuffix("_right")
    acc = rng.integers(INT32_MIN, INT32_MAX, shape, dtype=np.int64, endpoint=True).astype(np.int32)
    flat = acc.reshape(-1)
    flat[: len(EDGES)] = EDGES[: flat.size]
    multiplier = rng.integers(2**30, INT32_MAX, channels, endpoint=True).astype(np.int32)
    shift = rng.integers(-31, -1 if right_only else 30, channels, endpoint=True).astype(np.int32)
    multiplier[:3] = [INT32_MAX, 2**30, 0][: channels]
    shift[:3] = ([-31, -1, -1] if right_only else [-31, 30, 0])[: channels]
    lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
    zero_point = int(rng.integers(lo, hi, endpoint=True))
    clamp = tuple(sorted(int(v) for v in rng.integers(lo, hi, 2, endpoint=True)))
    params = RequantizeParams(multiplier, shift, zero_point, clamp, out_dtype, rounding)
    args = [acc, multiplier, shift, params.offset_clamp(), np.zeros(shape, out_dtype)]
    return args, requantize(acc, params)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), row=st.sampled_from(KERNEL_TABLE))
def test_host_kernel_matches_reference(seed, row):
    shape, out_dtype, rounding = row
    args, expected = _case(shape, out_dtype, rounding, np.random.default_rng(seed))
    func = _workload(shape, out_dtype, rounding)
    ex = compile_default(func)
    tensors = [tvm.runtime.tensor(a) for a in args]
    ex[_symbol(func)](*tensors)
    np.testing.assert_array_equal(tensors[-1].numpy(), expected)


@pytest.mark.board
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), row=st.sampled_from(KERNEL_TABLE))
def test_aarch64_kernel_matches_reference(seed, row, board_key):
    from tir_armq.board.emulated import run_on_board

    shape, out_dtype, rounding = row
    args, expected = _case(shape, out_dtype, rounding, np.random.default_rng(seed))
    func = _workload(shape, out_dtype, rounding)
    ex = compile_default(func, AARCH64_A72)
    np.testing.assert_array_equal(run_on_board(ex, _symbol(func), args, key=board_key)[-1], expected)


@pytest.mark.armv7
@pytest.mark.parametrize("row", KERNEL_TABLE, ids=KERNEL_IDS)
def test_armv7_kernel_matches_reference(row):
    from tir_armq.board.armv7 import run_armv7

    shape, out_dtype, rounding = row
    args, expected = _case(shape, out_dtype, rounding, np.random.default_rng(7))
    func = _workload(shape, out_dtype, rounding)
    ex = compile_default(func, ARMV7_A7)
    np.testing.assert_array_equal(run_armv7(ex, _symbol(func), args)[-1], expected)


NEON_FORMS = {
    ("aarch64", "away"): ("sqrdmulh", "srshl", "sqadd"), ("aarch64", "upward"): ("sqrdmulh", "srshl"),
    ("aarch64", "single"): ("sqrdmulh", "sqdmulh", "srshl", "sqshl"),
    ("armv7", "away"): ("vqrdmulh.s32", "vrshl.s32", "vqadd.s32"),
    ("armv7", "upward"): ("vqrdmulh.s32", "vrshl.s32"),
    ("armv7", "single"): ("vqrdmulh.s32", "vqdmulh.s32", "vrshl.s32", "vqshl.s32"),
    ("aarch64", "single_right"): ("sqdmulh", "srshl"),
    ("armv7", "single_right"): ("vqdmulh.s32", "vrshl.s32"),
    ("aarch64", "upward_right"): ("sqrdmulh", "srshl"),
    ("armv7", "upward_right"): ("vqrdmulh.s32", "vrshl.s32"),
    ("aarch64", "away_right"): ("sqrdmulh", "srshl", "sqadd"),
    ("armv7", "away_right"): ("vqrdmulh.s32", "vrshl.s32", "vqadd.s32"),
}
# What the right-shifts-only promise removes: the left shift, the split of the shift into its
# left and right parts, and (single rounding) the per-lane select between two forms.
# (min/max on 8-bit lanes are the output clamp; on 32-bit lanes only the shift's split uses them.)
LEFT_SHIFT_FORMS = {"ushl", "sshl", "sqshl", "bit", "bsl", "vshl.u32", "vshl.s32", "vqshl.s32", "vmax.s32",
                    "vmin.s32", "vbit", "vbsl"}


@pytest.mark.parametrize("isa, rounding", sorted(NEON_FORMS), ids=[f"{i}-{r}" for i, r in sorted(NEON_FORMS)])
def test_requantize_uses_fixed_point_neon(isa, rounding):
    """32-bit saturating/rounding NEON forms, no 64-bit multiply anywhere in the kernel."""
    needed = NEON_FORMS[(isa, rounding)]
    target = AARCH64_A72 if isa == "aarch64" else ARMV7_A7
    asm = assembly(_workload((1, 4, 4, 32), "int8", rounding), target)
    mnemonics = {line.split()[0] for line in asm.splitlines()
                 if line.startswith("\t") and not line.startswith("\t.")}
    for mnemonic in needed:
        assert mnemonic in mnemonics, f"{mnemonic} missing from the requantize kernel"
    assert not mnemonics & {"smulh", "smull", "umulh", "smlal", "vmull.s32", "smull.w", "smmul"}
    if rounding.endswith("_right"):
        assert not mnemonics & LEFT_SHIFT_FORMS, sorted(mnemonics & LEFT_SHIFT_FORMS)
        assert not re.search(r"\ts(max|min)\tv\d+\.4s", asm), "the shift is still split into left and right"
    if rounding == "single_right":  # the truncating high half only
        assert not mnemonics & {"sqrdmulh", "vqrdmulh.s32"}
