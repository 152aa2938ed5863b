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
    """An llvm-mca CPU: triple and -mcpu, and how machine code is split into instructions.

    AArch64 models leave `thumb_triple` empty: every block is 32-bit words. 32-bit ARM models set
    it: a block's code is then ARM-mode 32-bit words (`triple`), or Thumb-2 when its hex string
    carries the `THUMB` prefix (`thumb_triple`; see `thumb_code`), since the plugin's machine code
    does not say which mode it was executed in.
    """

    name: str
    triple: str
    mcpu: str
    mattr: str = ""
    thumb_triple: str = ""

    def cache_file(self) -> Path:
        return cache_dir() / "mca" / f"{self.name}.json"


# LLVM 14 (Debian 12) models cortex-a72 with the A57 scheduling model and cortex-a53 with its own.
CORTEX_A72 = CpuModel("cortex-a72", "aarch64-linux-gnu", "cortex-a72", "+neon,+crc")
CORTEX_A53 = CpuModel("cortex-a53", "aarch64-linux-gnu", "cortex-a53", "+neon,+crc")
# ARMv7 (AArch32). LLVM 14 has no llvm-mca model for cortex-a7 or cortex-a53 in AArch32 (cortex-a7
# and -a8 have itineraries only, which llvm-mca does not support; cortex-a53 has none). The AArch32
# models it has: cortex-a57 (also used for cortex-a72), cortex-a9 (shared by cortex-a15), swift,
# cortex-r52 and some M-profile cores. cortex-a57 is the proxy: its NEON tables are complete
# and it is the model the AArch64 side uses for the A72, so armv7 and aarch64 estimates compare
# like for like; as a 3-wide out-of-order core it is optimistic for the 2-wide in-order A7.
# (cortex-a9, the 2-wide one, is unusable: llvm-mca cannot resolve its scheduling class for
# push/ldm, "unable to resolve scheduling class for write variant", and every kernel has those.)
CORTEX_A7_PROXY = CpuModel("armv7-cortex-a57", "armv7a-linux-gnueabihf", "cortex-a57", "+neon,+vfp4,+hwdiv-arm",
                           thumb_triple="thumbv7a-linux-gnueabihf")
CPU_MODELS = {m.name: m for m in (CORTEX_A72, CORTEX_A53)}  # AArch64 (what tir-armq bench offers)
ARMV7_CPU_MODELS = {m.name: m for m in (CORTEX_A7_PROXY,)}

THUMB = "t:"  # prefix of a Thumb-2 block's code hex (32-bit ARM models only)


def thumb_code(code_hex: str) -> str:
    """The code string that makes a 32-bit ARM model treat `code_hex` as Thumb-2 code."""
    return THUMB + code_hex


def _thumb_words(code_hex: str) -> list[str]:
    """Thumb-2 code as instructions: a halfword whose top five bits are 0b11101, 0b11110 or
    0b11111 starts a 32-bit instruction, any other one is a 16-bit instruction."""
    words, i = [], 0
    while i < len(code_hex):
        first = int(code_hex[i + 2 : i + 4], 16)  # high byte of the little-endian halfword
        size = 8 if first >> 3 in (0b11101, 0b11110, 0b11111) else 4
        words.append(THUMB + code_hex[i : i + size])
        i += size
    return words


def _words(code_hex: str) -> list[str]:
    """A block's machine code (little-endian hex) as instruction words: 32-bit words (AArch64, ARM
    mode), or for a `THUMB`-prefixed block its 16- and 32-bit Thumb-2 instructions, each prefixed."""
    if code_hex.startswith(THUMB):
        return _thumb_words(code_hex[len(THUMB) :])
    return [code_hex[i : i + 8] for i in range(0, len(code_hex), 8)]


def _triple(model: CpuModel, thumb: bool) -> str:
    if thumb and not model.thumb_triple:
        raise ValueError(f"CPU model {model.name} has no Thumb mode")
    return model.thumb_triple if thumb else model.triple


def _disassemble(words: list[str], model: CpuModel) -> dict[str, str]:
    """Instruction text of each word; words llvm-mc cannot decode become `nop` (1 slot)."""
    result: dict[str, str] = {}
    for thumb in (False, True):
        group = [w for w in words if w.startswith(THUMB) == thumb]
        if not group:
            continue
        hexes = [w[len(THUMB) :] if thumb else w for w in group]
        lines = [" ".join(f"0x{h[i:i + 2]}" for i in range(0, len(h), 2)) for h in hexes]
        proc = subprocess.run(
            ["llvm-mc", "--disassemble", f"-triple={_triple(model, thumb)}", f"-mattr={model.mattr}"],
            input="\n".join(lines) + "\n", capture_output=True, text=True, check=True,
        )
        bad = {int(m.group(1)) - 1 for m in re.finditer(r"<stdin>:(\d+):\d+: warning: invalid", proc.stderr)}
        decoded = iter(line.strip() for line in proc.stdout.splitlines() if line.startswith("\t") and not line.strip().startswith("."))
        result.update({w: ("nop" if i in bad else next(decoded)) for i, w in enumerate(group)})
    return result


def _mca_regions(blocks: dict[str, list[str]], model: CpuModel, thumb: bool = False) -> dict[str, float]:
    """Cycles per iteration of each block (name -> asm lines), in one llvm-mca run.

    For 32-bit ARM models, lines llvm-mca's assembler rejects (disassembler output that does not
    re-assemble: a branch whose target is out of range when the block stands alone, say) are
    replaced by `nop` and the run repeated; AArch64 models fail on them, as they always did.
    """
    text = []
    for name, asm in blocks.items():
        text += [f"# LLVM-MCA-BEGIN {name}", *[f"\t{a}" for a in asm], f"# LLVM-MCA-END {name}"]
    cmd = ["llvm-mca", f"-mtriple={_triple(model, thumb)}", f"-mcpu={model.mcpu}", f"-mattr={model.mattr}",
           f"-iterations={ITERATIONS}", "-instruction-info=0", "-resource-pressure=0"]
    if thumb:
        cmd.append("-arm-implicit-it=always")  # a block may start inside an IT block
    for _attempt in range(5 if model.thumb_triple else 1):
        with tempfile.NamedTemporaryFile("w", suffix=".s") as f:
            f.write("\n".join(text) + "\n")
            f.flush()
            proc = subprocess.run([*cmd, f.name], capture_output=True, text=True)
        if proc.returncode == 0 or not model.thumb_triple:
            break
        bad = {int(m.group(1)) - 1 for m in re.finditer(r"\.s:(\d+):\d+: error:", proc.stderr)}
        if not bad or any(not text[i].startswith("\t") for i in bad if i < len(text)):
            break
        text = ["\tnop" if i in bad else line for i, line in enumerate(text)]
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
            for thumb in (False, True):
                group = [c for c in new if c.startswith(THUMB) == thumb]
                if group:
                    blocks = {self.key(c): [asm[w] for w in _words(c)] for c in group}
                    self._costs.update(_mca_regions(blocks, self.model, thumb))
            self._save()
        return {c: self._costs[self.key(c)] for c in codes}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._costs, sort_keys=True))
        tmp.replace(self.path)  # atomic: a killed run leaves the old cache intact
