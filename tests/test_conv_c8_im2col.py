"""The dense KxK conv kernel `conv_c8_im2col`: a pixel's patch (KH*KW*Cin values, padded to 8)
packed per output row, then conv_c8's 8-bit products (SMULL/SMLAL .8b + SADALP on AArch64,
VMULL/VMLAL.S8 + VPADAL on ARMv7), the data zero point folded into the bias. The kernel table's tests
(tests/cases.py) run it bit-exact on the host, the aarch64 board and ARMv7; here: the packed order
of the patch, which layers it takes, the instructions it lowers to, the extreme values and every
candidate of its search space."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import s_tir

from cases import Case
from runners import run_host
from tir_armq.build import assembly
from tir_armq.kernels import CONV_C2, CONV_C8, CONV_C8_IM2COL, CONV_INT16_LANE, select
from tir_armq.networks import NETWORKS
from tir_armq.reference import reference_output
from tir_armq.schedules.conv_c8 import MAX_PIXEL_TILE
from tir_armq.targets import AARCH64_A72, ARMV7_A7
from tir_armq.workloads import conv_spec
from tir_armq.workloads.conv_c8_im2col import pack_weights, padded_patch_size, patch_layout

STEM = NETWORKS["mobilenet_v2"][0].spec(output_dtype="int8", rounding="single")
# (kernel, stride, dilation, Cin): the stem's 9-byte kernel rows (8 + 1), 18-byte rows (16 + 2),
# whole 8-channel taps, dilated single taps of 5 bytes (no whole group), 30-byte rows (24 + 6).
LAYOUTS = [((3, 3), 2, 1, 3), ((1, 3), 1, 1, 6), ((3, 3), 1, 1, 8), ((3, 3), 1, (1, 2), 5),
           ((3, 3), 2, 1, 10), ((5, 5), 1, 2, 8)]


def _packed_im2col(spec, data: np.ndarray) -> np.ndarray:
    """numpy's packed patches of every output pixel: (N, OH, OW, Kp), in `PatchLayout` order."""
    p = spec.padding
    padded = np.pad(data, ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0)),
                    constant_values=spec.data_zero_point)
    k = spec.kernel[0] * spec.kernel[1] * data.shape[3]
    kh, kw, c = patch_layout(spec).tap(np.arange(k), np.where)
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh, ow = spec.out_hw
    y = (np.arange(oh) * sh)[:, None, None] + (kh * dh)[None, None, :]
    x = (np.arange(ow) * sw)[None, :, None] + (kw * dw)[None, None, :]
    patches = padded[:, y, x, c]  # (N, OH, OW, K)
    tail = padded_patch_size(spec) - k
    padding = np.full((*patches.shape[:3], tail), spec.data_zero_point, data.dtype)
    return np.concatenate([patches, padding], -1)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: f"{l[0][0]}x{l[0][1]}_s{l[1]}_d{l[2]}_c{l[3]}")
def test_packed_patches_and_weights_compute_the_conv(layout):
    """The packed order of the patch and of the weights agree: the GEMM of numpy's packed patches
    with `pack_weights` (the folded bias) is the layer's reference conv; every packed position holds
    one tap of the patch."""
    kernel, stride, dilation, cin = layout
    spec = conv_spec((1, 9, 11, cin), (8, *kernel, cin), stride=stride, dilation=dilation, padding="SAME",
                     data_zero_point=-77)
    taps = np.stack(patch_layout(spec).tap(np.arange(kernel[0] * kernel[1] * cin), np.where), 1)
    assert len({tuple(t) for t in taps}) == len(taps)
    case = Case(spec, CONV_C8_IM2COL, seed=3)
    data, weight, bias = case.inputs()
    packed, folded, zero_point = CONV_C8_IM2COL.prepare(spec, weight, bias).constants
    assert packed.shape == (8, 1, 1, padded_patch_size(spec)) and zero_point.tolist() == [-77]
    gemm = np.einsum("nyxk,ok->nyxo", _packed_im2col(spec, data).astype(np.int64),
                     packed[:, 0, 0].astype(np.int64)) + folded
    np.testing.assert_array_equal(gemm, reference_output(spec, data, weight, bias))


def test_stem_packs_its_27_bytes_as_three_8_byte_rows():
    """The stem's patch: the first 8 bytes of each kernel row (3 taps x 3 channels = 9 contiguous
    input bytes), then the 3 rows' last bytes, then 5 bytes of padding: K = 27 -> Kp = 32."""
    layout = patch_layout(STEM)
    assert (layout.runs, layout.full, layout.rest, padded_patch_size(STEM)) == (3, 8, 1, 32)
    kh, kw, c = layout.tap(np.arange(27), np.where)
    assert kh.tolist() == [0] * 8 + [1] * 8 + [2] * 8 + [0, 1, 2]
    assert (kw * 3 + c).tolist() == list(range(8)) * 3 + [8] * 3
    packed = pack_weights(STEM, np.arange(32 * 27, dtype=np.int16).reshape(32, 3, 3, 3).astype(np.int8))
    assert not packed[..., 27:].any()


def test_kxk_int8_layers_take_conv_c8_im2col():
    """Order of preference: conv_c2 / conv_c8 for pointwise layers, conv_c8_im2col for every other
    dense conv of TFLite's int8 scheme (the stem among them), conv_int16_lane for the rest."""
    assert select(STEM) is CONV_C8_IM2COL
    assert select(conv_spec((1, 4, 4, 16), (8, 1, 1, 16))) is CONV_C2
    assert select(conv_spec((1, 4, 4, 576), (8, 1, 1, 576))) is CONV_C8
    assert select(conv_spec((1, 4, 4, 10), (8, 1, 1, 10))) is CONV_INT16_LANE  # 1x1: not a KxK conv
    kxk = dict(data_shape=(1, 6, 6, 5), weight_shape=(12, 3, 1, 5), padding="VALID", data_zero_point=100)
    assert CONV_C8_IM2COL.applies(conv_spec(**kxk))
    assert not CONV_C8_IM2COL.applies(conv_spec(**kxk, weight_zero_point=1))
    assert not CONV_C8_IM2COL.applies(conv_spec(**kxk, data_dtype="uint8", weight_dtype="uint8"))
    # 12 output channels are padded to 16: not with a fused residual input of the layer's 12.
    assert not CONV_C8_IM2COL.applies(conv_spec(**kxk, output_dtype="int8", residual=True))
    spec = conv_spec(**kxk)
    weight = np.zeros(spec.weight_shape, np.int8)
    weight[3, 1, 0, 2] = -128  # outside TFLite's int8 scheme: the int16 pair sums rely on it
    assert select(spec, weight) is CONV_INT16_LANE


# The c8 step and the lane sums (tests/test_conv_c8.py's forms), and the patch copies: 8-byte loads.
C8_FORMS = {
    "aarch64": (r"smull\s+v\d+\.8h,\s*v\d+\.8b", r"smlal\s+v\d+\.8h,\s*v\d+\.8b",
                r"sadalp\s+v\d+\.4s,\s*v\d+\.8h", r"addp\s+v\d+\.4s", r"ldr\s+d\d+"),
    "armv7": (r"vmull\.s8\s+q", r"vmlal\.s8\s+q", r"vpadal\.s16\s+q", r"vuzp\.32", r"vld1\.8\s+\{d\d+\}"),
}


@pytest.mark.parametrize("isa", sorted(C8_FORMS))
def test_stem_uses_8bit_products(isa):
    """SMULL/SMLAL on 8-bit lanes into int16 and SADALP into int32 (VMULL/VMLAL.S8 + VPADAL.S16 on
    ARMv7): no int16 widening MAC (conv_int16_lane's SMLAL .4s by element) and no scalar multiply."""
    asm = assembly(CONV_C8_IM2COL.build(STEM), AARCH64_A72 if isa == "aarch64" else ARMV7_A7)
    for form in C8_FORMS[isa]:
        assert re.search(rf"^\s*{form}", asm, re.M), f"{form} missing"
    wide_mac = r"smlal2?\s+v\d+\.4s" if isa == "aarch64" else r"vmlal\.s16"
    assert not re.search(rf"^\s*{wide_mac}", asm, re.M)


@pytest.mark.parametrize("zero_point", [-128, 127])
def test_extreme_values_and_zero_points_on_host(zero_point):
    """Every product at |x * w| = 128 * 127 (the int16 pair sums' edge) and padding at the ends of
    the int8 range: the folded bias stays exact on the border pixels."""
    spec = conv_spec((1, 9, 8, 3), (16, 3, 3, 3), stride=2, padding="SAME", data_zero_point=zero_point)
    case = Case(spec, CONV_C8_IM2COL, seed=21, extreme_values=True)
    np.testing.assert_array_equal(run_host(case), case.expected())


# --- the search space --------------------------------------------------------------------------

def _space_candidates(func, target):
    """Every candidate: each design space (loop order) replayed with every pixel tile its sampled
    decision can take."""
    from tir_armq.measure.runner import register_intrinsics

    register_intrinsics()
    spaces = CONV_C8_IM2COL.rule.design_spaces(s_tir.Schedule(func), target)
    assert len(spaces) == 2
    for space in spaces:
        (tile,) = [inst for inst in space.trace.insts if inst.kind.name == "SamplePerfectTile"]
        width = int(np.prod([int(f) for f in space.trace.decisions[tile]]))
        for px in (f for f in range(1, MAX_PIXEL_TILE + 1) if width % f == 0):
            sch = s_tir.Schedule(func)
            space.trace.with_decision(tile, [width // px, px], remove_postproc=True).apply_to_schedule(
                sch, remove_postproc=True)
            yield px, sch


SPACE_LAYERS = {
    "3x3_s2_cin3_requantize": conv_spec((1, 9, 8, 3), (16, 3, 3, 3), stride=2, padding="SAME",
                                       data_zero_point=-5, output_dtype="int8", rounding="single"),
    "1x3_cin6_residual": conv_spec((1, 5, 8, 6), (8, 1, 3, 6), padding=(0, 0, 1, 1), data_zero_point=60,
                                   output_dtype="int8", rounding="single", residual=True),
    "3x3_cin10_int32": conv_spec((1, 6, 4, 10), (13, 3, 3, 10), padding="VALID", data_zero_point=3),
}


@pytest.mark.parametrize("name", sorted(SPACE_LAYERS))
def test_host_space_candidates_match_reference(name):
    case = Case(SPACE_LAYERS[name], CONV_C8_IM2COL, seed=17)
    args, expected = case.arguments(), case.expected()
    seen = set()
    for px, sch in _space_candidates(case.kernel.build(case.spec), tvm.target.Target("llvm")):
        tensors = [tvm.runtime.tensor(a) for a in args]
        tvm.compile(sch.mod, target="llvm")[case.name](*tensors)
        got = tensors[-1].numpy()[..., : case.spec.out_channels]
        np.testing.assert_array_equal(got, expected, err_msg=str(sch.trace))
        seen.add(px)
    assert len(seen) == sum(case.spec.out_shape[2] % f == 0 for f in range(1, MAX_PIXEL_TILE + 1))


@pytest.mark.board
def test_aarch64_space_candidates_match_reference(board_key):
    from tir_armq.board.emulated import run_on_board

    case = Case(SPACE_LAYERS["3x3_s2_cin3_requantize"], CONV_C8_IM2COL, seed=18, extreme_values=True)
    args, expected = case.arguments(), case.expected()
    for px, sch in _space_candidates(case.kernel.build(case.spec), AARCH64_A72.tvm_target()):
        ex = tvm.compile(sch.mod, target=AARCH64_A72.tvm_target())
        out = run_on_board(ex, case.name, args, key=board_key)[-1]
        np.testing.assert_array_equal(out[..., : case.spec.out_channels], expected,
                                      err_msg=f"{px} pixels: {sch.trace}")
