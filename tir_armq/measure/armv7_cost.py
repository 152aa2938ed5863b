"""Deterministic cost of an armv7 kernel: instructions executed per call (counting plugin under
qemu-arm, through the C harness) and estimated cycles per call (llvm-mca per executed block).

The ARMv7 counterpart of `tir_armq.measure.cost.measure_kernel`. There is no armv7 TVM runtime, so
the kernel runs in `tir_armq/board/armv7_harness.c`, which calls it `warmup` times and then
`calls` times, each call in its own marked region; the numbers are the mean over those regions.

What a region contains: the kernel call and about ten instructions of the harness around it (the
harness is ARM-mode code, like the kernel). Anything the kernel calls outside itself (libc's
`posix_memalign` for a workspace, `memset`, ...) is counted too; Debian's armhf libc is Thumb-2
code, and such blocks are recognised by their size (an ARM block has 4 bytes per instruction, a
Thumb block with a 16-bit instruction has fewer) or their address (ARM code is word-aligned) and
disassembled as Thumb. A Thumb block made only of 32-bit instructions at a word address cannot be
told apart that way and is taken as ARM: a harmless error for the kernels measured here, which run
no libc code at all in the region.

ARM blocks qemu split where straight-line code goes on are costed whole, as on AArch64
(`cost.basic_blocks`; the A32 branch decoding is here). Thumb blocks are costed as qemu gave them.

Cycle estimate: see `tir_armq.measure.mca` (`CORTEX_A7_PROXY`: LLVM 14 has no Cortex-A7 model, so
the cortex-a57 AArch32 model stands in; it ranks kernels, it does not predict A7 cycle counts).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..board.armv7 import run_armv7_counted
from .cost import Cost, basic_blocks
from .mca import CORTEX_A7_PROXY, BlockCostCache, CpuModel, thumb_code
from .plugin import Block, Counts

if TYPE_CHECKING:
    import tvm

NOMINAL_HZ_A7 = 1.2e9  # Raspberry Pi 2's Cortex-A7 (v1.1 board is 900 MHz): for Cost.seconds(hz)


def block_code(block: Block) -> str:
    """A block's code string for a 32-bit ARM CPU model: plain hex for ARM mode, `thumb_code(...)`
    when the block shows Thumb-2 (fewer than 4 bytes per instruction, or a halfword address)."""
    code = block.code.hex()
    return thumb_code(code) if _is_thumb(block) else code


def _is_thumb(block: Block) -> bool:
    return len(block.code) != 4 * block.insns or block.addr % 4 != 0


def ends_in_a32_branch(block: Block) -> bool:
    """The last instruction of an ARM-mode block may leave straight-line code."""
    w = int.from_bytes(block.code[-4:], "little")
    if (w >> 25) & 0b111 == 0b101:  # B, BL; and BLX (immediate) under cond 1111
        return True
    if w >> 28 == 0b1111:  # unconditional space: NEON, PLD, barriers; none of it branches
        return False
    writes_pc = (w >> 12) & 0xF == 0xF
    load = bool((w >> 20) & 1)
    return bool((w & 0x0FFFFFD0) == 0x012FFF10  # BX, BLX (register)
            or ((w >> 25) & 0b111 == 0b100 and load and (w >> 15) & 1)  # LDM with pc: pop {..., pc}
            or ((w >> 26) & 0b11 == 0b01 and load and writes_pc)  # LDR pc
            or ((w >> 26) & 0b11 == 0b00 and writes_pc and not (0b1000 <= (w >> 21) & 0xF <= 0b1011))  # ALU into pc
            or (w >> 24) & 0xF == 0xF)  # SVC


def a32_falls_into(block: Block, successor: Block) -> bool:
    """Straight-line ARM code runs on from `block` into `successor`. Thumb blocks are never joined:
    their instructions are not decoded here (and a Thumb block made only of 32-bit instructions at
    a word address passes for ARM, so both ends must look like ARM)."""
    return not (_is_thumb(block) or _is_thumb(successor) or ends_in_a32_branch(block))


def armv7_cost_of_regions(counts: Counts, model: CpuModel = CORTEX_A7_PROXY,
                          cache: BlockCostCache | None = None) -> Cost:
    """Mean cost of one marked region of an armv7 run (cf. `cost.cost_of_regions`)."""
    if counts.region_open or counts.marker_errors or not counts.regions:
        raise RuntimeError(
            f"counted run has unusable regions ({len(counts.regions)} regions, "
            f"{counts.marker_errors} marker errors, open={counts.region_open})"
        )
    if not model.thumb_triple:
        raise ValueError(f"CPU model {model.name} is not a 32-bit ARM model")
    cache = cache or BlockCostCache(model)
    hot = [b for b in counts.block_list if b.execs_in_regions]
    if any(not b.code for b in hot):
        raise RuntimeError("counted run has no machine code for its blocks: run the plugin with bytes=on")
    blocks = basic_blocks(hot, code_of=block_code, falls_into=a32_falls_into)
    per_block = cache.costs(code for code, _ in blocks)
    cycles = sum(execs * per_block[code] for code, execs in blocks)
    n = len(counts.regions)
    return Cost(instructions=sum(counts.regions) / n, cycles=cycles / n, cpu=model.name)


def measure_armv7_counts(executable, func_name: str, arrays: Sequence[np.ndarray], *, warmup: int = 2,
                         calls: int = 2, timeout: float | None = 600.0) -> tuple[list[np.ndarray], Counts]:
    """The arrays after the calls and the plugin's counts (with machine code) of an armv7 run."""
    return run_armv7_counted(executable, func_name, list(arrays), warmup=warmup, calls=calls,
                             blocks="region", code_bytes=True, timeout=timeout)


def measure_armv7_kernel(
    executable: tvm.runtime.Executable | str | os.PathLike[str],
    func_name: str,
    arrays: Sequence[np.ndarray],
    *,
    model: CpuModel = CORTEX_A7_PROXY,
    warmup: int = 2,
    calls: int = 2,
    timeout: float | None = 600.0,
    cache: BlockCostCache | None = None,
) -> Cost:
    """Cost of one call of `func_name` of an armv7 build (a `tvm.compile(f, ARMV7_A7.tvm_target())`
    result or the path of an exported armv7 .so) under qemu-arm, averaged over `calls` calls.

    `Cost.instructions` is exact and repeatable; `Cost.cycles` is llvm-mca's estimate for `model`.
    Raises `tir_armq.board.armv7.Armv7Error` if the kernel fails.
    """
    _, counts = measure_armv7_counts(executable, func_name, arrays, warmup=warmup, calls=calls, timeout=timeout)
    return armv7_cost_of_regions(counts, model, cache)
