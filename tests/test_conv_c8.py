"""The pointwise conv's c8 path: the data zero point folded into the bias, 8-bit products of 16 (or
8) input channels (SMULL/SMLAL .8b + SADALP on AArch64, VMULL/VMLAL.S8 + VPADAL on ARMv7), ADDP
lane sums. Bit-exact against the numpy reference of the unfolded layer on the host, the aarch64
board and ARMv7, for int32 output, the requantize epilogue and the fused residual add; uniform
inputs and the extreme ones (|x * w| = 128 * 127 in every product, the int16 pair sum's edge)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cases import random_add_params, requantize_params
from tir_armq.build import assembly, compile_default
from tir_armq.reference import reference_output
from tir_armq.targets import AARCH64_A72, ARMV7_A7
from tir_armq.workloads import conv_spec
from tir_armq.workloads.add import has_tail
from tir_armq.workloads.conv_c8 import c8_path_applies, fold_data_zero_point

# (data shape, output channels, stride): K = 8 (tail only), 16, 24 (one step + the tail), 96;
# stride 2 and batch 2.
C8_TABLE = {
    "k8_oc16": ((1, 5, 6, 8), 16, 1),
    "k16_oc8": ((1, 4, 4, 16), 8, 1),
    "k24_tail": ((1, 3, 5, 24), 24, 1),
    "k96_oc64": ((1, 4, 4, 96), 64, 1),
    "k40_s2_batch2": ((2, 7, 7, 40), 16, 2),
}
EPILOGUES = ("int32", "requantize", "residual")
ROWS = [(name, epilogue) for name in C8_TABLE for epilogue in EPILOGUES]
IDS = [f"{name}-{epilogue}" for name, epilogue in ROWS]


def _spec(name: str, epilogue: str, data_zero_point: int):
    shape, cout, stride = C8_TABLE[name]
    out = "int32" if epilogue == "int32" else "int8"
    spec = conv_spec(shape, (cout, 1, 1, shape[3]), stride=stride, data_zero_point=data_zero_point,
                     output_dtype=out, rounding="single")
    if epilogue == "residual" and not has_tail(spec.out_shape):
        spec = conv_spec(shape, (cout, 1, 1, shape[3]), stride=stride, data_zero_point=data_zero_point,
                         output_dtype=out, rounding="single", residual=True)
    return spec


def _case(name: str, epilogue: str, seed: int, extreme: bool = False):
    """(the c8 PrimFunc's arguments, the reference output of the unfolded layer)."""
    rng = np.random.default_rng(seed)
    spec = _spec(name, epilogue, int(rng.integers(-128, 127, endpoint=True)))
    if extreme:
        data = rng.choice(np.array([-128, 127], np.int8), size=spec.data_shape)
        weight = rng.choice(np.array([-127, 127], np.int8), size=spec.weight_shape)
    else:
        data = rng.integers(-128, 127, spec.data_shape, endpoint=True, dtype=np.int8)
        weight = rng.integers(-127, 127, spec.weight_shape, endpoint=True, dtype=np.int8)
    bias = rng.integers(-(1 << 20), 1 << 20, spec.out_channels, dtype=np.int32)
    extra = []
    if spec.requantizes:
        extra.append(requantize_params(spec, rng))
        if spec.residual:
            extra += [rng.integers(-128, 127, spec.out_shape, endpoint=True, dtype=np.int8),
                      random_add_params("int8", rng)]
    folded, folded_bias = fold_data_zero_point(spec, weight, bias)
    return folded, folded.arguments(data, weight, folded_bias, *extra), reference_output(spec, data, weight, bias, *extra)


@settings(max_examples=40, deadline=None)
@given(row=st.sampled_from(ROWS), seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_host_c8_matches_reference(row, seed, extreme):
    spec, args, expected = _case(*row, seed, extreme)
    ex = compile_default(spec.prim_func("c8"))
    tensors = [tvm.runtime.tensor(a) for a in args]
    ex[spec.op_name](*tensors)
    np.testing.assert_array_equal(tensors[-1].numpy(), expected)


@pytest.mark.board
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.sampled_from(ROWS), seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_aarch64_c8_matches_reference(row, seed, extreme, board_key):
    from tir_armq.board.emulated import run_on_board

    spec, args, expected = _case(*row, seed, extreme)
    ex = compile_default(spec.prim_func("c8"), AARCH64_A72)
    np.testing.assert_array_equal(run_on_board(ex, spec.op_name, args, key=board_key)[-1], expected)


@pytest.mark.armv7
@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_armv7_c8_matches_reference(row):
    from tir_armq.board.armv7 import run_armv7

    spec, args, expected = _case(*row, seed=5, extreme=row[1] == "int32")
    ex = compile_default(spec.prim_func("c8"), ARMV7_A7)
    np.testing.assert_array_equal(run_armv7(ex, spec.op_name, args)[-1], expected)


# The c8 step and the lane sums, in the loop that holds the multiplies.
C8_FORMS = {
    "aarch64": (r"smull\s+v\d+\.8h,\s*v\d+\.8b", r"smlal\s+v\d+\.8h,\s*v\d+\.8b", r"sadalp\s+v\d+\.4s,\s*v\d+\.8h",
                r"addp\s+v\d+\.4s"),
    "armv7": (r"vmull\.s8\s+q", r"vmlal\.s8\s+q", r"vpadal\.s16\s+q", r"vuzp\.32"),  # lane sums: VUZP + VADD
}


@pytest.mark.parametrize("isa", sorted(C8_FORMS))
def test_c8_uses_8bit_products(isa):
    """SMULL/SMLAL on 8-bit lanes into int16 and SADALP into int32: no int16 widening MAC (the
    int16 path's SMLAL .4s) and no scalar multiply of data."""
    spec = _spec("k96_oc64", "requantize", 0)
    asm = assembly(spec.prim_func("c8"), AARCH64_A72 if isa == "aarch64" else ARMV7_A7)
    for form in C8_FORMS[isa]:
        assert re.search(rf"^\s*{form}", asm, re.M), f"{form} missing"
    wide_mac = r"smlal2?\s+v\d+\.4s" if isa == "aarch64" else r"vmlal\.s16"
    assert not re.search(rf"^\s*{wide_mac}", asm, re.M)


def test_c8_path_applies_only_to_its_layers():
    pointwise = dict(data_shape=(1, 4, 4, 16), weight_shape=(8, 1, 1, 16))
    assert c8_path_applies(conv_spec(**pointwise))
    assert not c8_path_applies(conv_spec(**pointwise, data_zero_point=3))  # fold it first
    assert not c8_path_applies(conv_spec(**pointwise, weight_zero_point=1))
    assert not c8_path_applies(conv_spec(**pointwise, data_dtype="uint8", weight_dtype="uint8"))
    assert not c8_path_applies(conv_spec((1, 4, 4, 16), (8, 3, 3, 16), padding="SAME"))
    assert not c8_path_applies(conv_spec((1, 4, 4, 12), (8, 1, 1, 12)))  # K not a multiple of 8
    assert not c8_path_applies(conv_spec((1, 4, 4, 16), (12, 1, 1, 16)))  # OC not a multiple of 8
    with pytest.raises(ValueError, match="c8 path"):
        conv_spec(**pointwise, data_zero_point=3).prim_func("c8")
    with pytest.raises(ValueError, match="unpadded"):
        spec = conv_spec((1, 4, 4, 16), (8, 3, 3, 16), padding="SAME")
        fold_data_zero_point(spec, np.zeros(spec.weight_shape, np.int8), np.zeros(8, np.int32))


# --- the search space (schedules/conv_c8.py) ------------------------------------------------------

def _space_candidates(func, target):
    """Every candidate of the c8 search space: each design space (loop order) replayed with every
    pixel tile its sampled decision can take (a perfect tile of OW, at most MAX_PIXEL_TILE)."""
    from tvm import s_tir

    from tir_armq.measure.runner import register_intrinsics
    from tir_armq.schedules.conv_c8 import MAX_PIXEL_TILE, ConvC8Space

    register_intrinsics()
    for space in ConvC8Space().design_spaces(s_tir.Schedule(func), target):
        (tile,) = [inst for inst in space.trace.insts if inst.kind.name == "SamplePerfectTile"]
        width = int(np.prod([int(f) for f in space.trace.decisions[tile]]))
        for px in (f for f in range(1, MAX_PIXEL_TILE + 1) if width % f == 0):
            sch = s_tir.Schedule(func)
            space.trace.with_decision(tile, [width // px, px], remove_postproc=True).apply_to_schedule(
                sch, remove_postproc=True)
            yield px, sch


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_host_c8_space_candidates_match_reference(row):
    spec, args, expected = _case(*row, seed=11)
    seen = set()
    for px, sch in _space_candidates(spec.prim_func("c8"), tvm.target.Target("llvm")):
        tensors = [tvm.runtime.tensor(a) for a in args]
        tvm.compile(sch.mod, target="llvm")[spec.op_name](*tensors)
        np.testing.assert_array_equal(tensors[-1].numpy(), expected, err_msg=str(sch.trace))
        seen.add(px)
    assert len(seen) == sum(spec.out_shape[2] % f == 0 for f in range(1, 5))


@pytest.mark.board
@pytest.mark.parametrize("row", [("k24_tail", "requantize"), ("k40_s2_batch2", "residual"), ("k96_oc64", "int32")],
                         ids=lambda row: "-".join(row))
def test_aarch64_c8_space_candidates_match_reference(row, board_key):
    from tir_armq.board.emulated import run_on_board

    spec, args, expected = _case(*row, seed=12, extreme=row[1] == "int32")
    for px, sch in _space_candidates(spec.prim_func("c8"), AARCH64_A72.tvm_target()):
        ex = tvm.compile(sch.mod, target=AARCH64_A72.tvm_target())
        np.testing.assert_array_equal(run_on_board(ex, spec.op_name, args, key=board_key)[-1], expected,
                                      err_msg=f"{px} pixels: {sch.trace}")


def test_c8_space_tile_shares_weight_loads():
    """Two pixels per step: each 16-channel step's weights (8 rows x 2 d registers) are loaded once
    for both pixels, so the 8-byte loads per 8-bit SMULL fall by ~1/3 from one pixel to two (in the
    loop: (16 + 2) / 8 -> (16 + 4) / 16), and again to four."""
    spec = _spec("k96_oc64", "requantize", 0)
    per_smull = {}
    for px, sch in _space_candidates(spec.prim_func("c8"), AARCH64_A72.tvm_target()):
        if px in per_smull:  # the first design space (columns outer) only
            break
        asm = tvm.compile(sch.mod, target=AARCH64_A72.tvm_target()).mod.inspect_source("s")
        smull = len(re.findall(r"^\s*smull\s+v\d+\.8h,\s*v\d+\.8b", asm, re.M))
        d_loads = len(re.findall(r"^\s*ldr\s+d", asm, re.M)) + 2 * len(re.findall(r"^\s*ldp\s+d", asm, re.M))
        per_smull[px] = d_loads / smull
    assert per_smull[2] <= 0.7 * per_smull[1] and per_smull[4] <= 0.7 * per_smull[2], per_smull


@pytest.mark.board
def test_c8_tuning_stops_when_the_space_is_measured(tmp_path, board_key):
    """A budget beyond the space's size: the run measures every candidate once and ends (MetaSchedule
    alone would ask for new candidates forever); the best record is bit-exact on the board."""
    from tir_armq.board.emulated import run_on_board
    from tir_armq.database import TargetDatabase
    from runners import tune_in_subprocess
    from tir_armq.tuning import Task, space_size

    spec, args, expected = _case("k16_oc8", "requantize", seed=13)  # OW = 4: 2 orders x 3 tiles
    task = Task("k16_oc8.c8.int8", spec.prim_func("c8"))
    assert space_size(task.func) == 6
    # In a process of its own: MetaSchedule's logging set-up fails the second tune_tir of a pytest
    # process ('NoneType' object has no attribute 'format'), and test_tuning_resilience tunes too.
    tune_in_subprocess(f"""
from test_conv_c8 import _case
spec, _, _ = _case("k16_oc8", "requantize", seed=13)
tune([Task("k16_oc8.c8.int8", spec.prim_func("c8"))], AARCH64_A72, Path({str(tmp_path)!r}), trials=50)
""")
    db = TargetDatabase(tmp_path, AARCH64_A72)
    assert 2 <= db.count(task.func) <= 6
    ex = tvm.compile(db.best_schedule(task.func).mod, target=AARCH64_A72.tvm_target())
    np.testing.assert_array_equal(run_on_board(ex, spec.op_name, args, key=board_key)[-1], expected)
