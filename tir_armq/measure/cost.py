"""Deterministic cost of a compiled kernel on the emulated board: instructions executed per call
(counting plugin) and estimated cycles per call (llvm-mca per executed block)."""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..board.guest import GUEST_PYTHON, Guest
from ..targets import AARCH64_A72
from .mca import CORTEX_A72, BlockCostCache, CpuModel
from .plugin import Block, Counts, build_plugin, parse_counts

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
    blocks = basic_blocks(hot)
    per_block = cache.costs(code for code, _ in blocks)
    cycles = sum(execs * per_block[code] for code, execs in blocks)
    n = len(counts.regions)
    return Cost(instructions=sum(counts.regions) / n, cycles=cycles / n, cpu=model.name)


def _ends_in_branch(block: Block) -> bool:
    """The last AArch64 instruction of `block` transfers control (or traps)."""
    w = int.from_bytes(block.code[-4:], "little")
    return ((w & 0x7C000000) == 0x14000000  # B, BL
            or (w & 0xFF000000) == 0x54000000  # B.cond
            or (w & 0x7E000000) in (0x34000000, 0x36000000)  # CBZ/CBNZ, TBZ/TBNZ
            or (w & 0xFE000000) == 0xD6000000  # BR, BLR, RET
            or (w & 0xFF000000) == 0xD4000000)  # SVC, BRK


def _falls_into(block: Block, successor: Block) -> bool:
    return not _ends_in_branch(block)


def basic_blocks(blocks: list[Block], *, code_of: Callable[[Block], str] = lambda b: b.code.hex(),
                 falls_into: Callable[[Block, Block], bool] = _falls_into) -> list[tuple[str, int]]:
    """(machine code, executions) of each executed straight-line run of code (see `entry_blocks`)."""
    return [(code, execs) for code, execs, _ in entry_blocks(blocks, code_of=code_of, falls_into=falls_into)]


def entry_blocks(blocks: list[Block], *, code_of: Callable[[Block], str] = lambda b: b.code.hex(),
                 falls_into: Callable[[Block, Block], bool] = _falls_into) -> list[tuple[str, int, Block]]:
    """(machine code, executions, entry block) of each executed straight-line run of code.

    qemu ends a translation block at a branch, and also where its own limits fall: its buffers fill
    up (a long unrolled loop body, 117 + 26 instructions in a depthwise tile) or the code crosses a
    guest page. To the CPU the pieces are one straight-line block, and llvm-mca must see them whole:
    costed apart, the multiply-bound part and the shift-bound part after it cannot overlap. So a
    block that does not end in a branch is joined with the block at its end address (its
    successor). The successor may also be entered from elsewhere (a loop's first iteration jumps to
    the page-split second half of its body; several blocks, one per entry point, can end at the
    same page boundary): each entry runs on to the end of the chain, so a chain is costed once per
    entry point, each as often as it was entered there (a block's executions less those of the
    blocks that fall into it). `code_of` gives a block's code string for the CPU model and
    `falls_into(block, successor)` says whether straight-line code runs on from one into the other
    (AArch64 by default: the block does not end in a branch; A32 in `armv7_cost`).
    """
    by_addr: dict[int, Block] = {}
    for b in sorted(blocks, key=lambda b: -b.execs_in_regions):
        by_addr.setdefault(b.addr, b)  # one address, several translations: the most executed one
    into: dict[int, list[Block]] = {}  # successor -> the blocks that fall into it
    for b in by_addr.values():
        succ = by_addr.get(b.addr + len(b.code))
        if succ is not None and succ is not b and falls_into(b, succ):
            into.setdefault(id(succ), []).append(b)
    nxt: dict[int, Block] = {}
    fallen: dict[int, int] = {}  # block -> executions that came in by falling through
    for succ in by_addr.values():
        preds = into.get(id(succ), [])
        falling = sum(p.execs_in_regions for p in preds)
        # More executions falling in than the successor ran: counts that do not fit one flow
        # (never seen); each block is then costed as qemu gave it.
        if preds and falling <= succ.execs_in_regions:
            nxt.update((id(p), succ) for p in preds)
            fallen[id(succ)] = falling
    result = [(code_of(b), b.execs_in_regions, b) for b in blocks if by_addr[b.addr] is not b]
    for b in by_addr.values():
        entries = b.execs_in_regions - fallen.get(id(b), 0)
        if entries <= 0:
            continue
        code, cur = [code_of(b)], b
        while id(cur) in nxt:
            cur = nxt[id(cur)]
            code.append(code_of(cur))
        result.append(("".join(code), entries, b))
    return result


def export_aarch64(executable, out_dir: Path) -> Path:
    """Cross-link a `tvm.compile` result for the board."""
    from tvm.support import cc

    path = out_dir / "kernel.so"
    executable.export_library(str(path), fcompile=cc.cross_compiler(AARCH64_A72.cross_cc))
    return path


class CountingGuest:
    """A long-lived guest python under qemu with the counting plugin, measuring kernel after kernel.

    Starting the guest (python + TVM runtime under emulation) takes seconds; each measurement after
    that costs only its kernel. A kernel that crashes the guest or hangs fails alone: the guest is
    restarted for the next one.
    """

    def __init__(self, model: CpuModel = CORTEX_A72, guest: Guest | None = None, timeout: float = 300.0) -> None:
        self.model = model
        self.guest = guest or Guest.default()
        self.timeout = timeout
        self.cache = BlockCostCache(model)
        self._proc: subprocess.Popen | None = None
        self._dir: tempfile.TemporaryDirectory | None = None
        self._reports = 0
        self.last_counts = None  # the plugin's report of the last measure(): its blocks, for profiles

    def __enter__(self) -> "CountingGuest":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _start(self) -> None:
        self.close()
        self.guest.check_installed()
        self._dir = tempfile.TemporaryDirectory(prefix="tir_armq_cost.")
        work = Path(self._dir.name)
        plugin = ",".join([str(build_plugin()), f"out={work / 'counts'}", "blocks=region", "bytes=on"])
        cmd = [shutil.which("qemu-aarch64") or "qemu-aarch64", "-cpu", self.model.name,
               "-L", str(self.guest.sysroot), "-plugin", plugin,
               str(self.guest.sysroot / GUEST_PYTHON), "-P", str(KERNEL_GUEST), "--serve"]
        self._stderr = open(work / "stderr.txt", "wb")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      env=self.guest.env(), cwd=work, text=True)
        self._reports = 0

    def _fail(self, what: str) -> RuntimeError:
        log = Path(self._dir.name) / "stderr.txt" if self._dir else None
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self.close()
        return RuntimeError(f"{what}\n{tail}".strip())

    def measure(self, lib: Path | str, func_name: str, arrays: Sequence[np.ndarray], *, warmup: int = 2,
                calls: int = 2) -> Cost:
        """Cost of one call of `func_name` in the aarch64 .so `lib`, averaged over `calls`."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        work = Path(self._dir.name)
        args = work / "args.npz"
        np.savez(args, *[np.ascontiguousarray(a) for a in arrays])
        request = {"lib": str(lib), "func": func_name, "args": str(args), "warmup": warmup, "calls": calls}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        ready, _, _ = select.select([self._proc.stdout], [], [], self.timeout)
        if not ready:
            raise self._fail(f"kernel did not finish within {self.timeout:.0f} s: {lib}")
        line = self._proc.stdout.readline()
        if not line:
            raise self._fail(f"the guest died while running {lib} (exit {self._proc.wait()})")
        reply = json.loads(line)
        report = work / f"counts.{self._reports}"
        self._reports += 1
        counts = parse_counts(report)
        report.unlink()
        self.last_counts = counts
        if not reply["ok"]:
            raise RuntimeError(f"kernel failed on the board: {reply['error']}")
        return cost_of_regions(counts, self.model, self.cache)


def measure_kernel(
    executable,
    func_name: str,
    arrays: Sequence[np.ndarray],
    *,
    model: CpuModel = CORTEX_A72,
    warmup: int = 2,
    calls: int = 2,
    guest: Guest | None = None,
    timeout: float = 600.0,
) -> Cost:
    """Cost of one call of `func_name` of an aarch64 build (a `tvm.compile` result or the path of an
    exported .so) on the emulated board. Measuring many kernels: keep a `CountingGuest` open."""
    with tempfile.TemporaryDirectory(prefix="tir_armq_lib.") as tmp, CountingGuest(model, guest, timeout) as g:
        lib = Path(executable) if isinstance(executable, (str, Path)) else export_aarch64(executable, Path(tmp))
        return g.measure(lib, func_name, arrays, warmup=warmup, calls=calls)
