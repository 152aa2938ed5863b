"""TFLite's 8-bit ADD: the standalone kernel and the residual add fused into a conv, on the host
(portable intrinsic), the aarch64 board (SQRDMULH/SRSHL) and ARMv7 (VQRDMULH/VRSHL), against
`add_reference` (the kernel's arithmetic in numpy, by flat index) over random scales, zero points
and clamps, with inputs uniform or at the dtype's end points."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import tvm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cases import random_add_params
from tir_armq.build import assembly, compile_default
from tir_armq.kernels import VADD_Q8
from tir_armq.targets import AARCH64_A72, ARMV7_A7
from tir_armq.workloads.add import AddParams, add_reference, has_tail
from tir_armq.workloads.params import dtype_range

# (shape, dtype): 16, 8 and 4 lanes, uint8, and a shape with TFLite's scalar tail (stays scalar).
TABLE = [((1, 6, 6, 24), "int8"), ((1, 4, 4, 32), "int8"), ((1, 2, 2, 12), "uint8"), ((1, 3, 3, 56), "int8"),
         ((2, 5, 5, 6), "uint8")]
IDS = [f"{'x'.join(map(str, s))}-{d}" for s, d in TABLE]


def _case(shape, dtype: str, seed: int, extreme: bool = False):
    rng = np.random.default_rng(seed)
    lo, hi = dtype_range(dtype)

    def draw():
        if extreme:
            return rng.choice(np.array([lo, hi], dtype=dtype), size=shape)
        return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)

    x1, x2 = draw(), draw()
    params = random_add_params(dtype, rng)
    clamp = sorted(int(v) for v in rng.integers(lo, hi, size=2, endpoint=True))
    if rng.random() < 0.5:  # a fused activation
        params = replace(params, clamp_low=clamp[0], clamp_high=clamp[1])
    args = [x1, x2, params.array(), np.zeros(shape, dtype)]
    return args, add_reference(x1, x2, params)


def _kernel(shape, dtype):
    """The vadd_q8 PrimFunc of the shape and its global symbol."""
    func = VADD_Q8.build(shape, dtype)
    return func, str(func.attrs["global_symbol"])


def _run_host(shape, dtype, args):
    func, symbol = _kernel(shape, dtype)
    ex = compile_default(func)
    tensors = [tvm.runtime.tensor(a) for a in args]
    ex[symbol](*tensors)
    return tensors[-1].numpy()


@settings(max_examples=40, deadline=None)
@given(row=st.sampled_from(TABLE), seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_host_add_matches_reference(row, seed, extreme):
    shape, dtype = row
    args, expected = _case(shape, dtype, seed, extreme)
    np.testing.assert_array_equal(_run_host(shape, dtype, args), expected)


@pytest.mark.board
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.sampled_from(TABLE), seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_aarch64_add_matches_reference(row, seed, extreme, board_key):
    from tir_armq.board.emulated import run_on_board

    shape, dtype = row
    args, expected = _case(shape, dtype, seed, extreme)
    func, symbol = _kernel(shape, dtype)
    ex = compile_default(func, AARCH64_A72)
    np.testing.assert_array_equal(run_on_board(ex, symbol, args, key=board_key)[-1], expected)


@pytest.mark.armv7
@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_armv7_add_matches_reference(row):
    from tir_armq.board.armv7 import run_armv7

    shape, dtype = row
    args, expected = _case(shape, dtype, seed=11)
    func, symbol = _kernel(shape, dtype)
    ex = compile_default(func, ARMV7_A7)
    np.testing.assert_array_equal(run_armv7(ex, symbol, args)[-1], expected)


# 32x32 -> 64-bit multiplies: what the int64 form compiles to when it is not tensorized (a 64-bit
# `madd`/`mul` of x registers is address arithmetic and allowed).
WIDE_MUL = {"aarch64": re.compile(r"^\s*(smulh|(smull|smaddl|umull|umaddl)\s+x\d+,\s*w|smull2?\s+v\d+\.2d)",
                                  re.M),
            "armv7": re.compile(r"^\s*(smull|umull|smlal|umlal)\s+r\d+", re.M)}
NEON = {"aarch64": ("sqrdmulh", "srshl", "sqadd"), "armv7": ("vqrdmulh.s32", "vrshl.s32", "vqadd.s32")}


@pytest.mark.parametrize("isa", sorted(NEON))
@pytest.mark.parametrize("row", [r for r in TABLE if not has_tail(r[0])], ids=[i for r, i in zip(TABLE, IDS)
                                                                              if not has_tail(r[0])])
def test_add_uses_fixed_point_neon(row, isa):
    """SQRDMULH and the rounding shift in 32-bit lanes; no 64-bit multiply left (a tensor with
    TFLite's scalar tail is the one case that keeps the scalar int64 form)."""
    shape, dtype = row
    asm = assembly(VADD_Q8.build(shape, dtype), AARCH64_A72 if isa == "aarch64" else ARMV7_A7)
    for mnemonic in NEON[isa]:
        assert re.search(rf"^\s*{re.escape(mnemonic)}\s", asm, re.M), f"{mnemonic} missing"
    assert not WIDE_MUL[isa].search(asm), WIDE_MUL[isa].search(asm).group(0)


@pytest.mark.parametrize("isa", sorted(NEON))
def test_fused_residual_add_uses_fixed_point_neon(isa):
    """The conv with its residual add (conv_int16_lane): the epilogue tensorized too, no 64-bit
    multiply in it."""
    from cases import CONV_TABLE
    from tir_armq.kernels import CONV_INT16_LANE
    from tir_armq.workloads import conv_spec

    spec = conv_spec(**CONV_TABLE["pointwise_1x1"], output_dtype="int8", rounding="single", residual=True)
    asm = assembly(CONV_INT16_LANE.build(spec), AARCH64_A72 if isa == "aarch64" else ARMV7_A7)
    assert not WIDE_MUL[isa].search(asm), WIDE_MUL[isa].search(asm).group(0)
    assert re.search(rf"^\s*{re.escape(NEON[isa][2])}\s", asm, re.M)  # the add's RoundingDivideByPOT fixup


def test_bad_add_params_are_refused():
    with pytest.raises(ValueError, match="shift1"):
        AddParams(0, 2**30, 3, 0, 2**30, -1, 2**30, -20, 0, -128, 127)
    with pytest.raises(ValueError, match="out_multiplier"):
        AddParams(0, 2**30, -1, 0, 2**30, -1, -5, -20, 0, -128, 127)
