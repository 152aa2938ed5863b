"""The pointwise conv kernel `conv_c8`: the data zero point folded into the bias, 8-bit products of
16 (or 8) input channels (SMULL/SMLAL .8b + SADALP on AArch64, VMULL/VMLAL.S8 + VPADAL on ARMv7),
ADDP lane sums, output channels padded to 8. Bit-exact against the numpy reference of the layer on
the host, the aarch64 board and ARMv7, for int32 output, the requantize epilogue and the fused
residual add; uniform inputs and the extreme ones (|x * w| = 128 * 127 in every product, the int16
pair sum's edge)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cases import random_add_params, requantize_params
from tir_armq.build import assembly, compile_default
from tir_armq.kernels import CONV_C8
from tir_armq.reference import reference_output
from tir_armq.targets import AARCH64_A72, ARMV7_A7
from tir_armq.workloads import conv_spec
from tir_armq.workloads.add import has_tail

# (data shape, output channels, stride): K = 8 (tail only), 16, 24 (one step + the tail), 96;
# stride 2 and batch 2; 12 output channels (padded to 16, no residual add then).
C8_TABLE = {
    "k8_oc16": ((1, 5, 6, 8), 16, 1),
    "k16_oc8": ((1, 4, 4, 16), 8, 1),
    "k24_tail": ((1, 3, 5, 24), 24, 1),
    "k96_oc64": ((1, 4, 4, 96), 64, 1),
    "k40_s2_batch2": ((2, 7, 7, 40), 16, 2),
    "k16_oc12_padded": ((1, 4, 4, 16), 12, 1),
}
EPILOGUES = ("int32", "requantize", "residual")
ROWS = [(name, epilogue) for name in C8_TABLE for epilogue in EPILOGUES]
IDS = [f"{name}-{epilogue}" for name, epilogue in ROWS]


def _spec(name: str, epilogue: str, data_zero_point: int):
    shape, cout, stride = C8_TABLE[name]
    out = "int32" if epilogue == "int32" else "int8"
    spec = conv_spec(shape, (cout, 1, 1, shape[3]), stride=stride, data_zero_point=data_zero_point,
                     output_dtype=out, rounding="single")
    if epilogue == "residual" and not has_tail(spec.out_shape) and cout % 8 == 0:
        spec = conv_spec(shape, (cout, 1, 1, shape[3]), stride=stride, data_zero_point=data_zero_point,
                         output_dtype=out, rounding="single", residual=True)
    return spec


def _case(name: str, epilogue: str, seed: int, extreme: bool = False):
    """(the layer, conv_c8's arguments for it, the reference output of the layer)."""
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
    args = CONV_C8.arguments(spec, data, weight, bias, *extra)
    return spec, args, reference_output(spec, data, weight, bias, *extra)


def _output(spec, out: np.ndarray) -> np.ndarray:
    """The layer's channels of conv_c8's output (padded to a multiple of 8)."""
    return out[..., :spec.out_channels]


def _run_host(ex, spec, args) -> np.ndarray:
    tensors = [tvm.runtime.tensor(a) for a in args]
    ex[CONV_C8.kernel_name(spec)](*tensors)
    return _output(spec, tensors[-1].numpy())


@settings(max_examples=40, deadline=None)
@given(row=st.sampled_from(ROWS), seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_host_c8_matches_reference(row, seed, extreme):
    spec, args, expected = _case(*row, seed, extreme)
    np.testing.assert_array_equal(_run_host(compile_default(CONV_C8.build(spec)), spec, args), expected)


@pytest.mark.slow
@pytest.mark.board
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.sampled_from(ROWS), seed=st.integers(0, 2**32 - 1), extreme=st.booleans())
def test_aarch64_c8_matches_reference(row, seed, extreme, board_key):
    from tir_armq.board.emulated import run_on_board

    spec, args, expected = _case(*row, seed, extreme)
    ex = compile_default(CONV_C8.build(spec), AARCH64_A72)
    out = run_on_board(ex, CONV_C8.kernel_name(spec), args, key=board_key)[-1]
    np.testing.assert_array_equal(_output(spec, out), expected)


@pytest.mark.slow  # the kernel table's ARMv7 tests run conv_c8's table rows by default
@pytest.mark.armv7
@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_armv7_c8_matches_reference(row):
    from tir_armq.board.armv7 import run_armv7

    spec, args, expected = _case(*row, seed=5, extreme=row[1] == "int32")
    ex = compile_default(CONV_C8.build(spec), ARMV7_A7)
    np.testing.assert_array_equal(_output(spec, run_armv7(ex, CONV_C8.kernel_name(spec), args)[-1]), expected)


# The c8 step and the lane sums, in the loop that holds the multiplies.
C8_FORMS = {
    "aarch64": (r"smull\s+v\d+\.8h,\s*v\d+\.8b", r"smlal\s+v\d+\.8h,\s*v\d+\.8b",
                r"sadalp\s+v\d+\.4s,\s*v\d+\.8h", r"addp\s+v\d+\.4s"),
    "armv7": (r"vmull\.s8\s+q", r"vmlal\.s8\s+q", r"vpadal\.s16\s+q", r"vuzp\.32"),  # lane sums: VUZP + VADD
}


@pytest.mark.parametrize("isa", sorted(C8_FORMS))
def test_c8_uses_8bit_products(isa):
    """SMULL/SMLAL on 8-bit lanes into int16 and SADALP into int32: no int16 widening MAC (the
    int16 kernels' SMLAL .4s) and no scalar multiply of data."""
    spec = _spec("k96_oc64", "requantize", 0)
    asm = assembly(CONV_C8.build(spec), AARCH64_A72 if isa == "aarch64" else ARMV7_A7)
    for form in C8_FORMS[isa]:
        assert re.search(rf"^\s*{form}", asm, re.M), f"{form} missing"
    wide_mac = r"smlal2?\s+v\d+\.4s" if isa == "aarch64" else r"vmlal\.s16"
    assert not re.search(rf"^\s*{wide_mac}", asm, re.M)


def test_c8_applies_only_to_its_layers():
    pointwise = dict(data_shape=(1, 4, 4, 16), weight_shape=(8, 1, 1, 16))
    assert CONV_C8.applies(conv_spec(**pointwise))
    assert CONV_C8.applies(conv_spec(**pointwise, data_zero_point=3))  # folded into the bias
    assert not CONV_C8.applies(conv_spec(**pointwise, weight_zero_point=1))
    assert not CONV_C8.applies(conv_spec(**pointwise, data_dtype="uint8", weight_dtype="uint8"))
    assert not CONV_C8.applies(conv_spec((1, 4, 4, 16), (8, 3, 3, 16), padding="SAME"))
    assert not CONV_C8.applies(conv_spec((1, 4, 4, 12), (8, 1, 1, 12)))  # K not a multiple of 8
    # OC not a multiple of 8: padded (the extra channels sliced off), unless a residual input is fused.
    odd = dict(data_shape=(1, 4, 4, 16), weight_shape=(12, 1, 1, 16), output_dtype="int8")
    assert CONV_C8.applies(conv_spec(**odd)) and CONV_C8.kernel_spec(conv_spec(**odd)).out_channels == 16
    assert not CONV_C8.applies(conv_spec(**odd, residual=True))
    # TFLite's int8 scheme never has a -128 weight; the 8-bit pair sums rely on it.
    spec = conv_spec(**pointwise)
    weight = np.zeros(spec.weight_shape, np.int8)
    weight[0, 0, 0, 0] = -128
    assert not CONV_C8.applies(spec, weight)
    with pytest.raises(ValueError, match="does not compute this layer"):
        CONV_C8.arguments(spec, np.zeros(spec.data_shape, np.int8), weight, np.zeros(8, np.int32))
    with pytest.raises(ValueError, match="does not compute this layer"):
        CONV_C8.build(conv_spec(**pointwise, weight_zero_point=1))
    with pytest.raises(ValueError, match="unpadded"):
        spec = conv_spec((1, 4, 4, 16), (8, 3, 3, 16), padding="SAME")
        CONV_C8.arguments(spec, np.zeros(spec.data_shape, np.int8), np.zeros(spec.weight_shape, np.int8),
                          np.zeros(8, np.int32))


# --- the search space (schedules/conv_c8.py) ------------------------------------------------------

def _space_candidates(func, target):
    """Every candidate of conv_c8's search space: each design space (loop order, pixels one or two
    at a time) replayed with every tile its sampled decision can take (a perfect tile of OW, or of
    OW / 2 in pairs, of at most MAX_PIXEL_TILE pixels); yields (pixels per tile, schedule)."""
    from tvm import s_tir

    from tir_armq.measure.runner import register_intrinsics

    register_intrinsics()
    for space in CONV_C8.rule.design_spaces(s_tir.Schedule(func), target):
        (tile,) = [inst for inst in space.trace.insts if inst.kind.name == "SamplePerfectTile"]
        width = int(np.prod([int(f) for f in space.trace.decisions[tile]]))
        pair = 2 if any(inst.kind.name == "Fuse" for inst in space.trace.insts) else 1
        for f in (f for f in range(1, int(tile.attrs[1]) + 1) if width % f == 0):
            sch = s_tir.Schedule(func)
            space.trace.with_decision(tile, [width // f, f], remove_postproc=True).apply_to_schedule(
                sch, remove_postproc=True)
            yield f * pair, sch


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_host_c8_space_candidates_match_reference(row):
    spec, args, expected = _case(*row, seed=11)
    seen = set()
    for px, sch in _space_candidates(CONV_C8.build(spec), tvm.target.Target("llvm")):
        got = _run_host(tvm.compile(sch.mod, target="llvm"), spec, args)
        np.testing.assert_array_equal(got, expected, err_msg=str(sch.trace))
        seen.add(px)
    assert len(seen) == sum(spec.out_shape[2] % f == 0 for f in range(1, 5))


@pytest.mark.board
@pytest.mark.parametrize("row", [("k24_tail", "requantize"), ("k40_s2_batch2", "residual"),
                                 ("k96_oc64", "int32")], ids=lambda row: "-".join(row))
def test_aarch64_c8_space_candidates_match_reference(row, board_key):
    from tir_armq.board.emulated import run_on_board

    spec, args, expected = _case(*row, seed=12, extreme=row[1] == "int32")
    for px, sch in _space_candidates(CONV_C8.build(spec), AARCH64_A72.tvm_target()):
        ex = tvm.compile(sch.mod, target=AARCH64_A72.tvm_target())
        out = run_on_board(ex, CONV_C8.kernel_name(spec), args, key=board_key)[-1]
        np.testing.assert_array_equal(_output(spec, out), expected, err_msg=f"{px} pixels: {sch.trace}")


def test_c8_space_tile_shares_weight_loads():
    """Two pixels per step: each 16-channel step's weights (8 rows x 2 d registers) are loaded once
    for both pixels, so the 8-byte loads per 8-bit SMULL fall by ~1/3 from one pixel to two (in the
    loop: (16 + 2) / 8 -> (16 + 4) / 16), and again to four."""
    spec = _spec("k96_oc64", "requantize", 0)
    per_smull = {}
    for px, sch in _space_candidates(CONV_C8.build(spec), AARCH64_A72.tvm_target()):
        if px in per_smull:  # the first design space (columns outer) only
            break
        asm = tvm.compile(sch.mod, target=AARCH64_A72.tvm_target()).mod.inspect_source("s")
        smull = len(re.findall(r"^\s*smull\s+v\d+\.8h,\s*v\d+\.8b", asm, re.M))
        d_loads = len(re.findall(r"^\s*ldr\s+d", asm, re.M)) + 2 * len(re.findall(r"^\s*ldp\s+d", asm, re.M))
        per_smull[px] = d_loads / smull
    assert per_smull[2] <= 0.7 * per_smull[1] and per_smull[4] <= 0.7 * per_smull[2], per_smull


@pytest.mark.slow  # ~4 min on 2 cores: keeps the default run under 30 minutes
@pytest.mark.board
def test_c8_tuning_stops_when_the_space_is_measured(tmp_path, board_key):
    """A budget beyond the space's size: the run measures every candidate once and ends (MetaSchedule
    alone would ask for new candidates forever); the best record is bit-exact on the board."""
    from runners import tune_in_subprocess
    from tir_armq.board.emulated import run_on_board
    from tir_armq.database import TargetDatabase
    from tir_armq.kernels import space_size
    from tir_armq.tuning import Task

    spec, args, expected = _case("k16_oc8", "requantize", seed=13)  # OW = 4: 2 orders x (3 + 2 tiles)
    task = Task(CONV_C8.kernel_name(spec), CONV_C8.build(spec))
    assert space_size(task.func) == 10
    # In a process of its own: MetaSchedule's logging set-up fails the second tune_tir of a pytest
    # process ('NoneType' object has no attribute 'format'), and test_tuning_resilience tunes too.
    tune_in_subprocess(f"""
from test_conv_c8 import _case
from tir_armq.kernels import CONV_C8
spec, _, _ = _case("k16_oc8", "requantize", seed=13)
tune([Task(CONV_C8.kernel_name(spec), CONV_C8.build(spec))], AARCH64_A72, Path({str(tmp_path)!r}), trials=50)
""")
    db = TargetDatabase(tmp_path, AARCH64_A72)
    assert 2 <= db.count(task.func) <= 10
    ex = tvm.compile(db.best_schedule(task.func).mod, target=AARCH64_A72.tvm_target())
    out = run_on_board(ex, CONV_C8.kernel_name(spec), args, key=board_key)[-1]
    np.testing.assert_array_equal(_output(spec, out), expected)
