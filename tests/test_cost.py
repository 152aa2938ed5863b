"""The cost measure on the emulated board: exact repeatable counts, and a cycle estimate that
ranks an obviously slower kernel as slower (what the MetaSchedule runner relies on)."""

from __future__ import annotations

import pytest

from cases import COST_SPEC, channel_outer_scalar, cost_inputs
from tir_armq.build import compile_default
from tir_armq.kernels import DWCONV_INT16
from tir_armq.measure.cost import measure_kernel
from tir_armq.measure.mca import CORTEX_A53, CORTEX_A72
from tir_armq.targets import AARCH64_A72

pytestmark = pytest.mark.board

SPEC = COST_SPEC
KERNEL = DWCONV_INT16  # the variant `cost_inputs` gives the arguments of
SYMBOL = KERNEL.kernel_name(SPEC)


def test_counts_are_identical_across_runs():
    ex = compile_default(KERNEL.build(SPEC), AARCH64_A72)
    first = measure_kernel(ex, SYMBOL, cost_inputs())
    second = measure_kernel(ex, SYMBOL, cost_inputs())
    assert first == second
    assert first.instructions > SPEC.macs / 16  # a kernel ran: at least one instruction per 16 MACs


def test_scalar_kernel_costs_more_than_tensorized():
    ex = compile_default(KERNEL.build(SPEC), AARCH64_A72)
    tensorized = measure_kernel(ex, SYMBOL, cost_inputs())
    scalar = measure_kernel(channel_outer_scalar(AARCH64_A72), SYMBOL, cost_inputs())
    assert scalar.cycles > 2 * tensorized.cycles
    assert scalar.instructions > 2 * tensorized.instructions


def test_in_order_a53_is_estimated_slower_than_a72():
    ex = compile_default(KERNEL.build(SPEC), AARCH64_A72)
    a72 = measure_kernel(ex, SYMBOL, cost_inputs(), model=CORTEX_A72)
    a53 = measure_kernel(ex, SYMBOL, cost_inputs(), model=CORTEX_A53)
    assert a53.instructions == a72.instructions  # same code, same path
    assert a53.cycles > a72.cycles  # dual-issue in-order vs 3-wide out-of-order


ADD = (0x91000400).to_bytes(4, "little")  # add x0, x0, #1
BNE = (0x54FFFFE1).to_bytes(4, "little")  # b.ne back


@pytest.mark.parametrize("first_end, second_execs, joined", [
    (ADD, 10, True),    # qemu split a straight line: one basic block
    (BNE, 10, False),   # a real branch ends the first
    (ADD, 30, True),    # the second is entered from elsewhere too: whole from the first's entry
])
def test_blocks_split_by_qemu_are_costed_whole(first_end, second_execs, joined):
    from tir_armq.measure.cost import basic_blocks
    from tir_armq.measure.plugin import Block

    first = Block(addr=0x1000, insns=4, execs_in_regions=10, execs_total=10, code=ADD * 3 + first_end)
    second = Block(addr=0x1010, insns=2, execs_in_regions=second_execs, execs_total=second_execs,
                   code=ADD + BNE)
    blocks = sorted(basic_blocks([first, second]))
    if joined:
        # Each entry point's straight line to the branch, as often as it was entered there.
        rest = [(second.code.hex(), second_execs - 10)] if second_execs > 10 else []
        assert blocks == sorted([((first.code + second.code).hex(), 10), *rest])
    else:
        assert blocks == sorted([(first.code.hex(), 10), (second.code.hex(), second_execs)])


def test_blocks_ending_at_one_page_boundary_each_join_the_next_page():
    # qemu ends a translation block at a guest page: the loop's entry and its back edge are two
    # blocks ending at the same page boundary, each falls into the block after it.
    from tir_armq.measure.cost import basic_blocks
    from tir_armq.measure.plugin import Block

    entry = Block(addr=0x1FF0, insns=4, execs_in_regions=2, execs_total=2, code=ADD * 4)
    body = Block(addr=0x1FF8, insns=2, execs_in_regions=30, execs_total=30, code=ADD * 2)
    page = Block(addr=0x2000, insns=2, execs_in_regions=32, execs_total=32, code=ADD + BNE)
    assert sorted(basic_blocks([entry, body, page])) == sorted([
        ((entry.code + page.code).hex(), 2), ((body.code + page.code).hex(), 30)])
    # Counts that cannot be one flow (more fall in than ran): each block as qemu gave it.
    short = Block(addr=0x2000, insns=2, execs_in_regions=20, execs_total=20, code=ADD + BNE)
    assert sorted(basic_blocks([entry, body, short])) == sorted([
        (entry.code.hex(), 2), (body.code.hex(), 30), (short.code.hex(), 20)])
