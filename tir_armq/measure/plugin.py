"""Build and run the instruction-counting qemu plugin (`insncount.c`), and read what it reports.

The plugin is compiled on the host (it is loaded by the host's qemu-aarch64, not by the guest)
against `qemu-plugin.h` of the same qemu release, which `scripts/setup.sh` (step
`qemu-plugin-header`) extracts from Debian's qemu 7.2 source package into the board directory.
The built library is cached under the board directory and rebuilt when the C source, the header or
the compiler flags change.

Regions: the guest marks them with `os.lseek(-1, 0x1C0DE001, 0)` (start) and
`os.lseek(-1, 0x1C0DE002, 0)` (stop); see `insncount.c` for exactly what a region contains. The
call fails with EBADF, which Python raises as OSError: wrap it in `contextlib.suppress(OSError)`.

Determinism of a guest python: besides a fixed environment (see `run_counted`), set
PYTHONHASHSEED (e.g. "0"). With the default random hash seed, whole-run totals of
`python3.11 -P -c ...` differed by ~5 k instructions between two runs, and region counts by ~100.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from tir_armq.paths import board_dir

SOURCE = Path(__file__).resolve().parent / "insncount.c"
QEMU_SRC_VERSION = "7.2.0"  # the host's qemu-user (Debian 12); plugin API v1
CFLAGS = ["-O2", "-Wall", "-fPIC", "-shared"]
LIBS = ["-lpthread"]

MARK_START = 0x1C0DE001
MARK_STOP = 0x1C0DE002
MARK_FLUSH = 0x1C0DE003
MARK_SPLIT_AT = 0x1C0DE004  # the address goes in the third syscall argument


def header_path() -> Path:
    """qemu-plugin.h as extracted by set-up."""
    return board_dir() / "qemu-src" / f"qemu-{QEMU_SRC_VERSION}" / "include" / "qemu" / "qemu-plugin.h"


def plugin_path() -> Path:
    """Where the built plugin lives (it may not exist yet: see `build_plugin`)."""
    return board_dir() / "plugin" / "libinsncount.so"


def _build_key(header: Path, cc: str) -> str:
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), header.read_bytes(), " ".join([cc, *CFLAGS, *LIBS]).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def build_plugin(cc: str = "gcc") -> Path:
    """Compile the plugin unless the cached build matches the current source; return its path."""
    header = header_path()
    if not header.is_file():
        raise RuntimeError(
            f"counting plugin: {header} is missing; run scripts/setup.sh "
            "(step qemu-plugin-header extracts it from the qemu 7.2 source package)"
        )
    if shutil.which(cc) is None:
        raise RuntimeError(f"counting plugin: host C compiler {cc!r} not found")
    out = plugin_path()
    stamp = out.with_name(out.name + ".key")
    key = _build_key(header, cc)
    if out.is_file() and stamp.is_file() and stamp.read_text() == key:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build under a unique name and rename: concurrent builders (pytest-xdist, several sessions)
    # then never load a half-written library.
    fd, tmp = tempfile.mkstemp(prefix=".libinsncount.", suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        cmd = [cc, *CFLAGS, f"-I{header.parent}", "-o", tmp, str(SOURCE), *LIBS]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"counting plugin: build failed: {' '.join(cmd)}\n{res.stderr}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    stamp.write_text(key)
    return out


@dataclass(frozen=True)
class Block:
    """One translation block: start address, instructions, executions (in regions, in the run)."""

    addr: int
    insns: int
    execs_in_regions: int
    execs_total: int
    code: bytes = b""  # machine code, only when the plugin ran with bytes=on
    # executions in regions per guest thread (vCPU 0..7, then all others), only with threads=on
    execs_by_thread: tuple[int, ...] = ()


@dataclass
class Counts:
    """What one counted run reported.

    total: instructions of the whole run (all threads).
    regions: instructions of each marked region, in marking order.
    blocks: start address -> (instructions, executions inside regions). When one address has more
        than one block (rare: code reloaded, or qemu translating a shorter block at the same
        address), the most executed one is kept here; `block_list` has all of them.
    """

    total: int
    regions: list[int]
    blocks: dict[int, tuple[int, int]]
    vcpus_used: int = 1
    marker_errors: int = 0
    region_open: bool = False
    block_list: list[Block] = field(default_factory=list)

    def block_insns_in_regions(self) -> int:
        """sum(insns x executions in regions) over all blocks; equals sum(regions) by construction."""
        return sum(b.insns * b.execs_in_regions for b in self.block_list)


def parse_counts(path: Path | str) -> Counts:
    """Read the plugin's `out=` file."""
    scalars: dict[str, int] = {}
    regions: dict[int, int] = {}
    block_list: list[Block] = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            if parts[0] == "region":
                regions[int(parts[1])] = int(parts[2])
            elif parts[0] == "block":
                code = bytes.fromhex(parts[5]) if len(parts) > 5 else b""
                block_list.append(Block(int(parts[1], 16), int(parts[2]), int(parts[3]), int(parts[4]), code))
            elif parts[0] == "threads":
                last = block_list[-1]
                if (int(parts[1], 16), int(parts[2])) != (last.addr, last.insns):
                    raise ValueError("a threads line that does not follow its block")
                # Not checked against the block's total: threads still running (waiting) while the
                # report is written can add to one count and not yet to the other.
                block_list[-1] = replace(last, execs_by_thread=tuple(int(x) for x in parts[3:]))
            else:
                scalars[parts[0]] = int(parts[1])
        except (IndexError, ValueError) as e:
            raise ValueError(f"{path}:{lineno}: cannot parse {line!r}") from e
    if "total_insns" not in scalars:
        raise ValueError(f"{path}: no total_insns line: not an insncount report")
    if sorted(regions) != list(range(len(regions))) or len(regions) != scalars.get("regions", len(regions)):
        raise ValueError(f"{path}: region lines are incomplete")
    blocks: dict[int, tuple[int, int]] = {}
    best: dict[int, Block] = {}
    for b in block_list:
        if b.addr not in best or b.execs_in_regions > best[b.addr].execs_in_regions:
            best[b.addr] = b
            blocks[b.addr] = (b.insns, b.execs_in_regions)
    return Counts(
        total=scalars["total_insns"],
        regions=[regions[i] for i in range(len(regions))],
        blocks=blocks,
        vcpus_used=scalars.get("vcpus_used", 1),
        marker_errors=scalars.get("marker_errors", 0),
        region_open=bool(scalars.get("region_open", 0)),
        block_list=block_list,
    )


def merge_counts(parts: list[Counts]) -> Counts:
    """One report of the segments a split run wrote (`out`.0, `out`.1, ...): their regions summed into
    one region, each block's executions added up."""
    if not parts:
        raise ValueError("no reports to merge")
    merged: dict[tuple[int, int, bytes], Block] = {}
    for part in parts:
        for b in part.block_list:
            key = (b.addr, b.insns, b.code)
            old = merged.get(key)
            merged[key] = b if old is None else Block(
                b.addr, b.insns, old.execs_in_regions + b.execs_in_regions, max(old.execs_total, b.execs_total),
                b.code, tuple(x + y for x, y in zip(old.execs_by_thread, b.execs_by_thread)))
    block_list = sorted(merged.values(), key=lambda b: (b.addr, b.insns))
    blocks: dict[int, tuple[int, int]] = {}
    for b in block_list:
        if b.addr not in blocks or b.execs_in_regions > blocks[b.addr][1]:
            blocks[b.addr] = (b.insns, b.execs_in_regions)
    return Counts(total=max(p.total for p in parts), regions=[sum(sum(p.regions) for p in parts)], blocks=blocks,
                  vcpus_used=max(p.vcpus_used for p in parts), marker_errors=sum(p.marker_errors for p in parts),
                  region_open=parts[-1].region_open, block_list=block_list)


def run_counted(
    argv: list[str],
    *,
    qemu: str = "qemu-aarch64",
    cpu: str = "cortex-a72",
    sysroot: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    blocks: str = "region",
    code_bytes: bool = False,
    per_thread: bool = False,
    timeout: float | None = None,
) -> Counts:
    """Run the guest program `argv` under qemu with the counting plugin and return its counts.

    Counts depend on the whole initial state of the process (environment, paths, cwd, whether
    stderr is a pipe): pass a fixed `env` and byte-identical arguments to compare runs. stdout and
    stderr are always pipes here, for that reason. The report file is written outside the guest's
    cwd and sys.path, so it cannot change what the guest sees.
    """
    so = build_plugin()
    qemu_bin = shutil.which(qemu) or qemu
    with tempfile.TemporaryDirectory(prefix="insncount.") as tmp:
        out = Path(tmp) / "counts.txt"
        opts = [str(so), f"out={out}", f"blocks={blocks}"] + (["bytes=on"] if code_bytes else [])
        opts += ["threads=on"] if per_thread else []
        cmd = [qemu_bin, "-cpu", cpu]
        if sysroot is not None:
            cmd += ["-L", str(sysroot)]
        cmd += ["-plugin", ",".join(opts), *argv]
        res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(
                f"counted run failed (exit {res.returncode}): {' '.join(cmd)}\n"
                + res.stderr.decode(errors="replace")[-4000:]
            )
        if not out.is_file():
            raise RuntimeError(f"counted run wrote no report: {' '.join(cmd)}\n" + res.stderr.decode(errors="replace"))
        return parse_counts(out)
