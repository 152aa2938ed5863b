"""The pointwise conv kernel `conv_c2`: output channels in the lanes, input channel pairs broadcast
(LD1R + SMULL/SMLAL .8b + SADALP on AArch64, VLD1.16 {d[]} + VMULL/VMLAL.S8 + VPADAL on ARMv7), no
lane sum. The kernel table's tests (`cases.py`: host, board, ARMv7, codegen) run its fixed schedule
on every table layer it applies to; here: what it applies to, its weight layout, the int16 pair
sum's edge, every candidate of its search space, and the instructions it claims."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import tvm
from tvm import s_tir

from cases import CONV_TABLE, Case, layer_spec
from runners import run_host
from tir_armq.build import assembly
from tir_armq.kernels import CONV_C2, space_size
from tir_armq.targets import AARCH64_A72, ARMV7_A7
from tir_armq.workloads import conv_spec
from tir_armq.workloads.conv_c2 import pair_channels


def test_c2_applies_only_to_its_layers():
    pointwise = dict(data_shape=(1, 4, 4, 20), weight_shape=(8, 1, 1, 20))
    assert CONV_C2.applies(conv_spec(**pointwise))  # K = 20: pairs of pairs, not c8's 8-channel steps
    assert CONV_C2.applies(conv_spec(**pointwise, data_zero_point=3))  # folded into the bias
    assert not CONV_C2.applies(conv_spec(**pointwise, weight_zero_point=1))
    assert not CONV_C2.applies(conv_spec(**pointwise, data_dtype="uint8", weight_dtype="uint8"))
    assert not CONV_C2.applies(conv_spec((1, 4, 4, 16), (8, 3, 3, 16), padding="SAME"))
    assert not CONV_C2.applies(conv_spec((1, 4, 4, 18), (8, 1, 1, 18)))  # K not a multiple of 4
    odd = dict(data_shape=(1, 4, 4, 16), weight_shape=(12, 1, 1, 16), output_dtype="int8")
    assert CONV_C2.kernel_spec(conv_spec(**odd)).out_channels == 16  # padded, sliced off after
    assert not CONV_C2.applies(conv_spec(**odd, residual=True))  # a residual input cannot be padded
    spec = conv_spec(**pointwise)
    weight = np.zeros(spec.weight_shape, np.int8)
    weight[0, 0, 0, 0] = -128  # outside TFLite's int8 scheme: two products could overflow int16
    assert not CONV_C2.applies(spec, weight)


def test_weights_come_in_channel_pairs():
    weight = np.arange(3 * 8, dtype=np.int8).reshape(3, 1, 1, 8)  # OHWI, K = 8
    paired = pair_channels(weight)
    assert paired.shape == (4, 3, 2)
    for p, n, e in itertools.product(range(4), range(3), range(2)):
        assert paired[p, n, e] == weight[n, 0, 0, 2 * p + e]


@pytest.mark.parametrize("epilogue", ["acc32", "requantize"])
def test_host_c2_pair_sum_edge(epilogue):
    """Every product at |x * w| = 128 * 127 (data and weights at the ends of their ranges), K = 96:
    the two products an int16 lane sums reach 32512, the edge the int8 scheme's weights allow."""
    case = Case(layer_spec("conv", CONV_TABLE["pointwise_1x1"] | {"data_shape": (1, 6, 6, 96),
                                                                   "weight_shape": (24, 1, 1, 96)}, epilogue),
                CONV_C2, seed=3, extreme_values=True)
    np.testing.assert_array_equal(run_host(case), case.expected())


# --- the search space (schedules/conv_c2.py) ------------------------------------------------------

def _space_candidates(func, target):
    """Every candidate of conv_c2's space: each design space (loop order) replayed with every pixel
    tile (MR) and every number of 8-channel groups (NR / 8) its two sampled tiles can take."""
    from tir_armq.measure.runner import register_intrinsics
    from tir_armq.schedules.conv_c2 import MAX_GROUPS, MAX_PIXEL_TILE

    register_intrinsics()
    for space in CONV_C2.rule.design_spaces(s_tir.Schedule(func), target):
        pixels, groups = [inst for inst in space.trace.insts if inst.kind.name == "SamplePerfectTile"]
        width, oc8 = (int(np.prod([int(f) for f in space.trace.decisions[i]])) for i in (pixels, groups))
        for mr, g in itertools.product(range(1, MAX_PIXEL_TILE + 1), range(1, MAX_GROUPS + 1)):
            if width % mr or oc8 % g:
                continue
            trace = space.trace.with_decision(pixels, [width // mr, mr], remove_postproc=True)
            trace = trace.with_decision(groups, [oc8 // g, g], remove_postproc=True)
            sch = s_tir.Schedule(func)
            trace.apply_to_schedule(sch, remove_postproc=True)
            yield (mr, g), sch


# OW = 6, 4, 5 and 1 pixels; 3, 2, 3 and 13 groups of 8 output channels; each epilogue.
SPACE_ROWS = [("pointwise_1x1", "residual"), ("k40_s2_batch2", "requantize"), ("k24_tail", "acc32"),
              ("classifier_oc100", "requantize")]


@pytest.mark.parametrize("row", SPACE_ROWS, ids=lambda row: "-".join(row))
def test_host_c2_space_candidates_match_reference(row):
    case = Case(layer_spec("conv", CONV_TABLE[row[0]], row[1]), CONV_C2, seed=11)
    func = CONV_C2.build(case.spec)
    expected = case.expected()
    seen = 0
    for tile, sch in _space_candidates(func, tvm.target.Target("llvm")):
        args = [tvm.runtime.tensor(a) for a in case.arguments()]
        tvm.compile(sch.mod, target="llvm")[case.name](*args)
        np.testing.assert_array_equal(args[-1].numpy()[..., :case.spec.out_channels], expected,
                                      err_msg=f"MR x NR/8 = {tile}: {sch.trace}")
        seen += 1
    assert seen == space_size(func)


@pytest.mark.board
def test_aarch64_c2_space_candidates_match_reference(board_key):
    from tir_armq.board.emulated import run_on_board

    case = Case(layer_spec("conv", CONV_TABLE["pointwise_1x1"], "residual"), CONV_C2, seed=12,
                extreme_values=True)
    expected = case.expected()
    for tile, sch in _space_candidates(CONV_C2.build(case.spec), AARCH64_A72.tvm_target()):
        ex = tvm.compile(sch.mod, target=AARCH64_A72.tvm_target())
        out = run_on_board(ex, case.name, case.arguments(), key=board_key)[-1]
        np.testing.assert_array_equal(out, expected, err_msg=f"MR x NR/8 = {tile}: {sch.trace}")


# --- the instructions ---------------------------------------------------------------------------

C2_FORMS = {
    "aarch64": (r"ld1r\s+\{\s*v\d+\.4h\s*\}", r"smull\s+v\d+\.8h,\s*v\d+\.8b,\s*v\d+\.8b",
                r"smlal\s+v\d+\.8h,\s*v\d+\.8b,\s*v\d+\.8b", r"sadalp\s+v\d+\.4s,\s*v\d+\.8h"),
    "armv7": (r"vld1\.16\s+\{d\d+\[\]\}", r"vmull\.s8\s+q", r"vmlal\.s8\s+q", r"vpadal\.s16\s+q"),
}


@pytest.mark.parametrize("isa", sorted(C2_FORMS))
def test_c2_accumulators_hold_output_channels(isa):
    """The pair broadcast, the 8-bit products and the pairwise accumulate are there; on AArch64 no
    ADDP and no EXT: no lane sum closes a tile (the accumulators are output channels), and no high
    half of a weight vector is moved down for the 8-byte broadcast."""
    spec = layer_spec("conv", CONV_TABLE["pointwise_1x1"] | {"data_shape": (1, 6, 6, 96)}
                      | {"weight_shape": (24, 1, 1, 96)}, "requantize")
    asm = assembly(CONV_C2.build(spec), AARCH64_A72 if isa == "aarch64" else ARMV7_A7)
    for form in C2_FORMS[isa]:
        assert re.search(rf"^\s*{form}", asm, re.M), f"{form} missing"
    if isa == "aarch64":
        assert not re.search(r"^\s*(addp|ext)\s", asm, re.M)
