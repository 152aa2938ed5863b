"""Deterministic latency of a multi-thread run, from the counting plugin's per-thread block counts.

Under qemu-user every guest thread runs on a host thread, so how long a thread waits for another,
and so how many instructions its wait loops execute, depends on host timing. The work does not:
TVM's thread pool gives task i of a parallel launch to thread i and splits the parallel loop
statically. So a run is costed from what does not depend on timing:

- The guest splits the counted region at every parallel launch (`kernel_guest.set_threads`): one
  report (segment) per launch, holding the launch and the serial code up to the next one.
- Each executed block is work (code of the kernel library: the launched tasks, and the kernel's own
  serial code), waiting (the pool's wait loops around `YieldThread`, `sched_yield`: left out),
  synchronisation (libc's and libstdc++'s code, whose mutex, condition variable and futex paths
  change with timing: left out of the segments that start at a launch, so the launch's fork and
  join count the pool's own code), or runtime (the rest: the pool, the VM, Python).
- A segment's latency is the launching thread's runtime code plus the most work any one thread did
  in it (the launching thread runs task 0, which is never smaller than another task); an invoke is
  the sum over its segments. Worker threads' runtime code (waking up, going back to sleep) runs
  beside the work and is not on this path; its instructions are in the total.

One thread gives one segment whose latency is the single-thread cost (`cost.cost_of_regions`) up to
the chains of straight-line code that cross from runtime into work code (none in practice).
What this cannot see: the time a sleeping worker takes to wake up (a futex round trip on the board),
and caches and memory bandwidth shared by the cores.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..board.guest import GUEST_PYTHON, Guest
from .cost import KERNEL_GUEST, Cost, basic_blocks
from .guest_maps import GuestMaps, Symbolizer, host_file
from .mca import BlockCostCache, CpuModel
from .plugin import Block, Counts, build_plugin, parse_counts

# Functions whose every instruction is waiting, by file: called in loops that spin until other
# threads finish (TVM's ParallelLauncher::WaitForJobs, TVMBackendParallelBarrier, the task queue).
WAIT_FUNCTIONS = {"libtvm_runtime.so": ("_ZN3tvm7runtime9threading11YieldThreadEv", "sched_yield"),
                  "libc.so.6": ("sched_yield", "__sched_yield")}
# Functions that only wait, by file, found by their symbols: pthreadpool's (in LiteRT's library)
# worker loop and the launcher's wait for the workers, and the atomic swap its futex wait spins on.
WAIT_WHOLE_FUNCTIONS = {"libpywrap_litert_common.so": ("thread_main", "pthreadpool_parallelize",
                                                       "__aarch64_swp4_acq")}
LOOP_WINDOW = 64  # bytes around a call to a wait function in which its loop's branches lie
# Where the launching thread's code takes a path that depends on timing: the mutex, condition
# variable and futex code of a launch (a worker still on its way to sleep takes the lock, or has not
# yet waited, and the launcher's path changes by tens of instructions). Left out of launch segments.
SYNC_FILES = ("libc.so.6", "libstdc++.so.6")


Symbol = tuple[str, str]  # (file name, function), as `guest_maps.Symbolizer` names an address


@dataclass(frozen=True)
class SegmentCost:
    """One segment of a run: its instructions and latency, and both split by the function they were
    spent in (`by_symbol`, when asked for): the launching thread's serial code, plus the slowest
    thread's work (or, where work is spread evenly, each function's share of it)."""

    instructions: float
    cycles: float
    by_symbol: dict[Symbol, tuple[float, float]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ThreadedCost(Cost):
    """Cost of one call on `threads` threads: `cycles` is the latency estimate, `instructions`
    every thread's instructions except waiting and a launch's synchronisation; `launches`
    parallel launches per call; `segments` the run's segments (of all its `calls`), with their costs
    by function when they were asked for."""

    threads: int = 1
    launches: int = 0
    segments: tuple[SegmentCost, ...] = field(default=(), compare=False)
    calls: int = 1

    def by_symbol(self) -> dict[Symbol, tuple[float, float]]:
        """(instructions, latency cycles) per call by function, over all segments."""
        total: dict[Symbol, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for segment in self.segments:
            for symbol, (insns, cycles) in segment.by_symbol.items():
                total[symbol][0] += insns / self.calls
                total[symbol][1] += cycles / self.calls
        return {k: (i, c) for k, (i, c) in total.items()}


def _objdump() -> str:
    return shutil.which("aarch64-linux-gnu-objdump") or "objdump"


@functools.lru_cache(maxsize=None)
def wait_ranges(library: Path, functions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Offsets [start, end) in `library` of the code that waits: the `functions` themselves, their
    PLT stubs, and each loop around a call to them (from the call's loop head to its back branch)."""
    out = subprocess.run([_objdump(), "-d", "--no-show-raw-insn", str(library)], capture_output=True,
                         text=True, check=True).stdout
    label = re.compile(r"^([0-9a-f]+) <([^@>]+)(@[^>]*)?>:$")  # name@plt, name@@GLIBC_2.17, ...
    insn = re.compile(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$")
    ranges: list[tuple[int, int]] = []
    stubs: set[int] = set()
    current: tuple[int, str] | None = None
    code: list[tuple[int, str, str]] = []
    for line in out.splitlines():
        m = label.match(line)
        if m:
            current = (int(m.group(1), 16), m.group(2))
            if current[1] in functions:
                stubs.add(current[0])  # a PLT stub or the function: wait to its end
            continue
        m = insn.match(line)
        if m and current is not None:
            addr = int(m.group(1), 16)
            code.append((addr, m.group(2), m.group(3)))
            if current[0] in stubs:
                ranges.append((addr, addr + 4))
    target = re.compile(r"^([0-9a-f]+)\b")
    for i, (addr, op, args) in enumerate(code):
        t = target.match(args)
        if op not in ("bl", "b") or not t or int(t.group(1), 16) not in stubs:
            continue
        # The loop: branches near the call that jump back to or before it; it spans from the
        # earliest such target to the last such branch.
        lo, hi = addr, addr + 4
        for other, other_op, other_args in code[max(0, i - LOOP_WINDOW // 4): i + LOOP_WINDOW // 4]:
            t2 = target.search(other_args.split(",")[-1].strip())
            if not (other_op.startswith(("b", "cb", "tb")) and t2) or other_op in ("bl", "blr", "br"):
                continue
            dest = int(t2.group(1), 16)
            if other >= addr and addr - LOOP_WINDOW <= dest <= addr:
                lo, hi = min(lo, dest), max(hi, other + 4)
        ranges.append((lo, hi))
    return tuple(sorted(ranges))


@functools.lru_cache(maxsize=None)
def function_ranges(library: Path, functions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Offsets [start, end) of `functions` in `library`, from its symbol table (sizes included)."""
    nm = shutil.which("aarch64-linux-gnu-nm") or "nm"
    out = subprocess.run([nm, "-S", "--defined-only", str(library)], capture_output=True, text=True).stdout
    ranges, found = [], set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in functions and parts[2] in "tT":
            start = int(parts[0], 16)
            ranges.append((start, start + int(parts[1], 16)))
            found.add(parts[3])
    missing = set(functions) - found
    if missing:
        raise RuntimeError(f"{library}: no {', '.join(sorted(missing))} in its symbol table: cannot tell its "
                           "waiting code (another build of the library?)")
    return tuple(sorted(ranges))


class BlockKinds:
    """Which blocks of a run are work, waiting or runtime code. `work_library`: the library whose
    code is the work (our kernels); None: work is whatever a worker thread ran (XNNPACK's tiles)."""

    def __init__(self, maps: str, sysroot: Path, work_library: str | None) -> None:
        self.maps = GuestMaps(maps)
        self.sysroot = sysroot
        self.work_library = Path(work_library).name if work_library else None
        self._cache: dict[int, str] = {}

    def _waits(self, path: str) -> tuple[tuple[int, int], ...]:
        name = Path(path).name
        host = host_file(path, self.sysroot).resolve()
        ranges = ()
        if name in WAIT_FUNCTIONS:
            ranges += wait_ranges(host, WAIT_FUNCTIONS[name])
        if name in WAIT_WHOLE_FUNCTIONS:
            ranges += function_ranges(host, WAIT_WHOLE_FUNCTIONS[name])
        return ranges

    def __call__(self, addr: int) -> str:
        """"work", "wait", "sync" (runtime code of a synchronisation library) or "runtime"."""
        if addr not in self._cache:
            path, offset = self.maps.locate(addr)
            name = Path(path).name
            if self.work_library and name == self.work_library:
                kind = "work"
            elif any(lo <= offset < hi for lo, hi in self._waits(path)):
                kind = "wait"
            elif name.startswith(SYNC_FILES):
                kind = "sync"
            else:
                kind = "runtime"
            self._cache[addr] = kind
        return self._cache[addr]


def _cycles(blocks: list[Block], execs, per_code: dict[str, float], cache: BlockCostCache) -> float:
    view = [replace(b, execs_in_regions=execs(b)) for b in blocks]
    chains = basic_blocks([b for b in view if b.execs_in_regions])
    missing = {code for code, _ in chains} - per_code.keys()
    per_code.update(cache.costs(missing))
    return sum(n * per_code[code] for code, n in chains)


def segment_latency(segment: Counts, kinds: BlockKinds, cache: BlockCostCache, *, launch: bool,
                    threads: int = 1, per_code: dict[str, float] | None = None,
                    symbol_of: Symbolizer | None = None) -> SegmentCost:
    """Instructions without waiting and latency in est. cycles of one segment of a run; `launch`:
    the segment starts at a parallel launch (its synchronisation code is left out). With
    `kinds.work_library` None, work is what a worker ran, spread evenly over `threads`. With
    `symbol_of`, both are also split by function."""
    per_code = {} if per_code is None else per_code
    blocks = [b for b in segment.block_list if b.execs_in_regions and kinds(b.addr) != "wait"]
    if any(len(b.execs_by_thread) < 2 for b in blocks):
        raise RuntimeError("the counted run has no per-thread counts: run the plugin with threads=on")
    slots = len(blocks[0].execs_by_thread) if blocks else 0
    if kinds.work_library is None:
        work = [b for b in blocks if kinds(b.addr) != "sync" and any(b.execs_by_thread[1:])]
    else:
        work = [b for b in blocks if kinds(b.addr) == "work"]
    launch = launch or (kinds.work_library is None and bool(work))
    serial_kinds = ("runtime",) if launch else ("runtime", "sync")
    work_ids = {id(b) for b in work}
    runtime = [b for b in blocks if kinds(b.addr) in serial_kinds and id(b) not in work_ids]

    def serial_execs(b: Block) -> int:
        return b.execs_by_thread[0]

    if kinds.work_library is None:
        # A pool that hands out work as threads ask for it (pthreadpool's work stealing): how much each
        # thread got depends on host timing, so the work is taken as perfectly balanced.
        def work_execs(b: Block) -> float:
            return b.execs_in_regions / threads

        slowest = _cycles(work, work_execs, per_code, cache)
    else:
        per_thread = [_cycles(work, lambda b, t=t: b.execs_by_thread[t], per_code, cache)
                      for t in range(slots)]
        slowest_thread = max(range(slots), key=per_thread.__getitem__, default=0)
        slowest = per_thread[slowest_thread] if per_thread else 0.0

        def work_execs(b: Block) -> float:
            return b.execs_by_thread[slowest_thread]

    latency = _cycles(runtime, serial_execs, per_code, cache) + slowest
    counted = [b for b in blocks if kinds(b.addr) != "sync" or not launch]
    by_symbol: dict[Symbol, tuple[float, float]] = {}
    if symbol_of is not None:
        parts: dict[Symbol, list[list[Block]]] = defaultdict(lambda: [[], [], []])  # runtime, work, counted
        for i, group in enumerate((runtime, work, counted)):
            for b in group:
                parts[symbol_of(b.addr)][i].append(b)
        for symbol, (serial_part, work_part, counted_part) in parts.items():
            cycles = (_cycles(serial_part, serial_execs, per_code, cache)
                      + _cycles(work_part, work_execs, per_code, cache))
            by_symbol[symbol] = (float(sum(b.insns * b.execs_in_regions for b in counted_part)), cycles)
    return SegmentCost(float(sum(b.insns * b.execs_in_regions for b in counted)), latency, by_symbol)


def threaded_cost(segments: list[Counts], maps: str, sysroot: Path, work_library: str | None, model: CpuModel,
                  threads: int, calls: int, cache: BlockCostCache | None = None,
                  by_symbol: bool = False) -> ThreadedCost:
    """Mean cost of one of `calls` marked calls, split into `segments` at each parallel launch;
    `by_symbol`: each segment's cost also by function."""
    if not segments or any(s.marker_errors for s in segments) or segments[-1].region_open:
        raise RuntimeError("counted run has unusable regions (marker errors or a region left open)")
    cache = cache or BlockCostCache(model)
    kinds = BlockKinds(maps, sysroot, work_library)
    symbol_of = Symbolizer(maps, sysroot) if by_symbol else None
    per_code: dict[str, float] = {}
    costs = tuple(segment_latency(segment, kinds, cache, launch=threads > 1 and k > 0, threads=threads,
                                  per_code=per_code, symbol_of=symbol_of)
                  for k, segment in enumerate(segments))
    launches = (len(segments) - 1) // calls if threads > 1 else 0
    return ThreadedCost(instructions=sum(c.instructions for c in costs) / calls,
                        cycles=sum(c.cycles for c in costs) / calls, cpu=model.name, threads=threads,
                        launches=launches, segments=costs, calls=calls)


def measure_threaded(library: Path | str, func_name: str, arrays, *, threads: int, model: CpuModel,
                     guest: Guest | None = None, warmup: int = 2, calls: int = 2, timeout: float = 600.0,
                     cache: BlockCostCache | None = None, by_symbol: bool = False) -> ThreadedCost:
    """Cost of one call of `func_name` in the aarch64 .so `library` on `threads` threads of the
    emulated board (one guest process; a kernel without parallel loops runs on one); `by_symbol`:
    also by function (`ThreadedCost.by_symbol`)."""
    guest = guest or Guest.default()
    guest.check_installed()
    with tempfile.TemporaryDirectory(prefix="tir_armq_threads.") as tmp:
        work = Path(tmp)
        np.savez(work / "args.npz", *[np.ascontiguousarray(a) for a in arrays])
        plugin = ",".join([str(build_plugin()), f"out={work / 'counts'}", "blocks=region", "bytes=on",
                           "threads=on"])
        cmd = [shutil.which("qemu-aarch64") or "qemu-aarch64", "-cpu", model.name, "-L", str(guest.sysroot),
               "-plugin", plugin, str(guest.sysroot / GUEST_PYTHON), "-P", str(KERNEL_GUEST), str(library),
               func_name, str(work / "args.npz"), "--warmup", str(warmup), "--calls", str(calls),
               "--maps", str(work / "maps"), "--threads", str(threads)]
        res = subprocess.run(cmd, env=guest.env(), cwd=work, capture_output=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"threaded run failed (exit {res.returncode}): {' '.join(cmd)}\n"
                               + res.stderr.decode(errors="replace")[-3000:])
        flushed = sorted(work.glob("counts.[0-9]*"), key=lambda p: int(p.suffix[1:]))
        segments = [parse_counts(p) for p in [*flushed, work / "counts"]]
        return threaded_cost(segments, (work / "maps").read_text(), guest.sysroot, str(library), model,
                             threads, calls, cache, by_symbol)
