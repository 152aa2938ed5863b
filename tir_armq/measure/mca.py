"""Cycle estimate of executed code: per basic block, llvm-mca's steady-state cycles per iteration
for a CPU model, times how often the block ran.

Blocks come from the counting plugin as machine code. They are disassembled with llvm-mc (unique
instruction words once, in one call) and analysed by llvm-mca (all new blocks in one call, as code
regions). Results are cached per CPU model and block content, so a re-run only pays for blocks it
has not seen: the same kernel measured twice costs one llvm-mca call in all.

Assumptions, stated because they bound what the number means:
- a block's cost is llvm-mca's `Total Cycles / Iterations` with the block repeated back to back:
  right for loop bodies (where the time goes), optimistic for straight-line code;
- no cache misses and no branch mispredictions: every load hits L1.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..paths import cache_dir

ITERATIONS = 100


@dataclass(frozen=True)
class CpuModel:
    """An llvm-mca CPU: triple and -mcpu, and the instruction width used to split machine code."""

    name: str
    triple: str
    mcpu: str
    mattr: str = ""

    def cache_file(self) -> Path:
        return cache_dir() / "mca" / f"{self.name}.json"


# LLVM 14 (Debian 12) models cortex-a72 with the A57 scheduling model and cortex-a53 with its own.
CORTEX_A72 = CpuModel("cortex-a72", "aarch64-linux-gnu", "cortex-a72", "+neon,+crc")
CORTEX_A53 = CpuModel("cortex-a53", "aarch64-linux-gnu", "cortex-a53", "+neon,+crc")
CPU_MODELS = {m.name: m for m in (CORTEX_A72, CORTEX_A53)}


def _words(code_hex: str) -> list[str]:
    """AArch64 machine code (little-endian hex of the block) as 32-bit instruction words."""
    return [code_hex[i : i + 8] for i in range(0, len(code_hex), 8)]


def _disassemble(words: list[str], model: CpuModel) -> dict[str, str]:
    """Instruction text of each word; words llvm-mc cannot decode become `nop` (1 slot)."""
    lines = [" ".join(f"0x{w[i:i + 2]}" for i in range(0, 8, 2)) for w in words]
    proc = subprocess.run(
        ["llvm-mc", "--disassemble", f"-triple={model.triple}", f"-mattr={model.mattr}"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, check=True,
    )
    bad = {int(m.group(1)) - 1 for m in re.finditer(r"<stdin>:(\d+):\d+: warning: invalid", proc.stderr)}
    decoded = iter(line.strip() for line in proc.stdout.splitlines() if line.startswith("\t") and not line.strip().startswith("."))
    return {w: ("nop" if i in bad else next(decoded)) for i, w in enumerate(words)}


def _mca_regions(blocks: dict[str, list[str]], model: CpuModel) -> dict[str, float]:
    """Cycles per iteration of each block (name -> asm lines), in one llvm-mca run."""
    text = []
    for name, asm in blocks.items():
        text += [f"# LLVM-MCA-BEGIN {name}", *[f"\t{a}" for a in asm], f"# LLVM-MCA-END {name}"]
    with tempfile.NamedTemporaryFile("w", suffix=".s") as f:
        f.write("\n".join(text) + "\n")
        f.flush()
        proc = subprocess.run(
            ["llvm-mca", f"-mtriple={model.triple}", f"-mcpu={model.mcpu}", f"-mattr={model.mattr}",
             f"-iterations={ITERATIONS}", "-instruction-info=0", "-resource-pressure=0", f.name],
            capture_output=True, text=True,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"llvm-mca failed ({model.mcpu}): {proc.stderr.strip()[-2000:]}")
    results = {}
    for m in re.finditer(r"Code Region - (\S+).*?Iterations:\s+(\d+).*?Total Cycles:\s+(\d+)", proc.stdout, re.S):
        results[m.group(1)] = int(m.group(3)) / int(m.group(2))
    missing = set(blocks) - set(results)
    if missing:
        raise RuntimeError(f"llvm-mca gave no result for {len(missing)} block(s)")
    return results


class BlockCostCache:
    """Cycles per execution of each block, by block content, persisted per CPU model."""

    def __init__(self, model: CpuModel) -> None:
        self.model = model
        self.path = model.cache_file()
        self._costs: dict[str, float] = {}
        if self.path.exists():
            try:
                self._costs = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                self._costs = {}  # a damaged cache only costs recomputation

    @staticmethod
    def key(code_hex: str) -> str:
        return hashlib.sha1(code_hex.encode()).hexdigest()

    def costs(self, codes: Iterable[str]) -> dict[str, float]:
        """Cycles per execution for each block's machine code (hex)."""
        codes = list(dict.fromkeys(codes))
        new = [c for c in codes if self.key(c) not in self._costs]
        if new:
            words = sorted({w for c in new for w in _words(c)})
            asm = _disassemble(words, self.model)
            cycles = _mca_regions({self.key(c): [asm[w] for w in _words(c)] for c in new}, self.model)
            self._costs.update(cycles)
            self._save()
        return {c: self._costs[self.key(c)] for c in codes}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._costs, sort_keys=True))
        tmp.replace(self.path)  # atomic: a killed run leaves the old cache intact
