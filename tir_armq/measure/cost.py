"""Deterministic cost of a compiled kernel on the emulated board: instructions executed per call
(counting plugin) and estimated cycles per call (llvm-mca per executed block)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..board.guest import GUEST_PYTHON, Guest
from ..targets import AARCH64_A72
from .mca import CORTEX_A72, BlockCostCache, CpuModel
from .plugin import Counts, run_counted

KERNEL_GUEST = Path(__file__).with_name("kernel_guest.py")
NOMINAL_HZ = 1.5e9  # Raspberry Pi 4's Cortex-A72 clock: turns estimated cycles into seconds


@dataclass(frozen=True)
class Cost:
    """Per call: instructions executed, and estimated cycles on `cpu`."""

    instructions: float
    cycles: float
    cpu: str

    def seconds(self, hz: float = NOMINAL_HZ) -> float:
        return self.cycles / hz

    def per_mac(self, macs: int) -> tuple[float, float]:
        """(instructions, cycles) per multiply-accumulate."""
        return self.instructions / macs, self.cycles / macs


def cost_of_regions(counts: Counts, model: CpuModel, cache: BlockCostCache | None = None) -> Cost:
    """Mean cost of one marked region: instructions from the plugin, cycles from llvm-mca."""
    if counts.region_open or counts.marker_errors or not counts.regions:
        raise RuntimeError(
            f"counted run has unusable regions ({len(counts.regions)} regions, "
            f"{counts.marker_errors} marker errors, open={counts.region_open})"
        )
    cache = cache or BlockCostCache(model)
    hot = [b for b in counts.block_list if b.execs_in_regions]
    if any(not b.code for b in hot):
        raise RuntimeError("counted run has no machine code for its blocks: run the plugin with bytes=on")
    per_block = cache.costs(b.code.hex() for b in hot)
    cycles = sum(b.execs_in_regions * per_block[b.code.hex()] for b in hot)
    n = len(counts.regions)
    return Cost(instructions=sum(counts.regions) / n, cycles=cycles / n, cpu=model.name)


def export_aarch64(executable, out_dir: Path) -> Path:
    """Cross-link a `tvm.compile` result for the board."""
    from tvm.support import cc

    path = out_dir / "kernel.so"
    executable.export_library(str(path), fcompile=cc.cross_compiler(AARCH64_A72.cross_cc))
    return path


def measure_kernel(
    executable,
    func_name: str,
    arrays: Sequence[np.ndarray],
    *,
    model: CpuModel = CORTEX_A72,
    warmup: int = 2,
    calls: int = 2,
    guest: Guest | None = None,
    timeout: float | None = 600.0,
) -> Cost:
    """Run `func_name` of an aarch64 build `calls` times under qemu with the counting plugin.

    `executable` is a `tvm.compile` result for an aarch64 target, or the path of an exported .so.
    """
    guest = guest or Guest.default()
    guest.check_installed()
    with tempfile.TemporaryDirectory(prefix="tir_armq_cost.") as tmp:
        tmp_path = Path(tmp)
        lib = Path(executable) if isinstance(executable, (str, Path)) else export_aarch64(executable, tmp_path)
        args = tmp_path / "args.npz"
        np.savez(args, *[np.ascontiguousarray(a) for a in arrays])
        argv = [str(guest.sysroot / GUEST_PYTHON), "-P", str(KERNEL_GUEST), str(lib), func_name, str(args),
                "--warmup", str(warmup), "--calls", str(calls)]
        counts = run_counted(argv, cpu=model.name, sysroot=guest.sysroot, env=guest.env(), cwd=tmp,
                             code_bytes=True, timeout=timeout)
    return cost_of_regions(counts, model)
