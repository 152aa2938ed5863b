"""Assembly of the tensorized kernels: every variant's multiply instructions (`mac_pattern`, what
the kernel table claims it lowers to) are in its inner loop, and no scalar multiply is there.

The inner loop is found from the assembly itself: the basic blocks (label to label) that hold
the variant's MACs. A scalar multiply of data there would mean the intrinsic or the 8-bit product
form did not lower as claimed. On AArch64 data is 32-bit (`w` registers) and addresses 64-bit
(`x`): a 64-bit `madd x1, x18, x12, x2` that strides a pointer is address arithmetic and allowed.
"""

from __future__ import annotations

import re

import pytest

from cases import table_cases
from tir_armq.build import assembly
from tir_armq.kernels import CONV_INT16_LANE, DWCONV_INT16
from tir_armq.targets import AARCH64_A72, ARMV7_A7

TABLE = table_cases()
TARGETS = {"aarch64": AARCH64_A72, "armv7": ARMV7_A7}
SCALAR_MUL = {
    "aarch64": re.compile(r"^\s*((mul|madd|msub|mneg)\s+w\d+|(smull|umull|smaddl|umaddl|smsubl|umsubl)\s+x\d+,\s*w)",
                          re.M),
    "armv7": re.compile(r"^\s*(mul|mla|mls|smull|umull|smlal|umlal)\w*\s+r\d+", re.M),
}


def basic_blocks(asm: str) -> list[str]:
    """Split assembly at labels (`.LBB0_3:` etc.), keeping only instruction lines."""
    blocks, current = [], []
    for line in asm.splitlines():
        if re.match(r"^[.\w$]+:", line):
            blocks.append("\n".join(current))
            current = []
        elif line.startswith("\t") and not line.lstrip().startswith((".", "//", "@")):
            current.append(line)
    blocks.append("\n".join(current))
    return blocks


def mac_blocks(asm: str, mac: re.Pattern) -> list[str]:
    return [b for b in basic_blocks(asm) if mac.search(b)]


@pytest.mark.parametrize("isa", sorted(TARGETS))
@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
def test_inner_loop_holds_the_variants_macs(case, isa):
    asm = assembly(case.kernel.build(case.spec), TARGETS[isa])
    mac = re.compile(rf"^\s*{case.kernel.mac_pattern[isa]}", re.M)
    blocks = mac_blocks(asm, mac)
    assert blocks, f"no {case.kernel.isa_forms[isa]} in the {isa} assembly"
    for block in blocks:
        assert not SCALAR_MUL[isa].search(block), f"scalar multiply in the MAC loop:\n{block}"
    if isa == "aarch64" and case.kernel is DWCONV_INT16:
        # The 8-lane tile lowers to the low and the high half: SMLAL2 must be there too.
        assert re.search(r"^\s*smlal2\s", asm, re.M), "no SMLAL2: the high half did not lower as claimed"


# KxK convs: the input-channel loop stays a loop and each lane splat feeds one MAC. (In small
# 1x1 and 1xK convs LLVM unrolls the whole tile and hoists each splat into a DUP shared by all
# output channel tiles: still SMLAL, checked above, but not the by-element encoding; seen on the
# 1x3 Cin-6 layer with the residual add fused, 6 reduction steps.)
KXK_CONVS = [(i, c) for i, c in TABLE if c.kernel is CONV_INT16_LANE and min(c.spec.kernel) > 1]


@pytest.mark.parametrize("case", [c for _, c in KXK_CONVS], ids=[i for i, _ in KXK_CONVS])
def test_aarch64_conv_uses_by_element_form(case):
    asm = assembly(case.kernel.build(case.spec), AARCH64_A72)
    assert re.search(r"^\s*smlal2?\s+v\d+\.4s,\s*v\d+\.[48]h,\s*v\d+\.h\[[0-3]\]", asm, re.M)


def test_untensorized_armv7_kernel_has_no_vmlal():
    """The VMLAL.S16 checks above discriminate: without the tensorized schedule, LLVM widens the
    int16 operands and multiplies in int32 (VMOVL + VMLA.I32), so the pattern is absent."""
    import tvm

    case = next(c for _, c in TABLE if c.kernel is DWCONV_INT16)
    func = case.kernel.build(case.spec)
    asm = tvm.compile(func, target=ARMV7_A7.tvm_target()).mod.inspect_source("s")
    assert not re.search(rf"^\s*{DWCONV_INT16.mac_pattern['armv7']}", asm, re.M)
