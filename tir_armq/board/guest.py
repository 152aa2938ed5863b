"""The emulated aarch64 guest: how to run the board's python3.11 under qemu-aarch64.

`scripts/setup.sh` builds the board (an arm64 Debian sysroot plus aarch64 wheels of numpy and the
TVM runtime); this module only knows where those live and how to launch a guest process.

Without binfmt_misc, a guest process cannot exec an aarch64 binary directly. The TVM RPC server
starts a `tvm.exec.popen_worker` subprocess with `sys.executable`, so the guest gets a
`sitecustomize` that points `sys.executable` at a host shell script re-entering qemu.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tir_armq.paths import board_dir

QEMU_CPU = "cortex-a72"  # matches the Cortex-A72 /proc/cpuinfo that setup.sh writes
GUEST_PYTHON = "usr/bin/python3.11"
BOARD_CORES = 4  # a Raspberry Pi 3 or 4 (the cpuinfo written below lists as many processors)
# Other boards' CPUs, as /proc/cpuinfo names them (part, revision): a Raspberry Pi 3's Cortex-A53 r0p4.
_CPU_PARTS = {"cortex-a53": ("0xd03", 4)}

_SITECUSTOMIZE = '''\
"""Written by tir_armq.board.guest: let the guest python start guest subprocesses (no binfmt)."""
import os
import sys

_launcher = os.environ.get("TIR_ARMQ_GUEST_PYTHON")
if _launcher:
    sys.executable = _launcher
'''


@dataclass(frozen=True)
class Guest:
    """One emulated board directory: sysroot, aarch64 site-packages, launcher scripts."""

    board: Path

    @classmethod
    def default(cls) -> "Guest":
        return cls(board_dir())

    @property
    def sysroot(self) -> Path:
        return self.board / "sysroot"

    @property
    def site_packages(self) -> Path:
        return self.board / "pyarm64"

    @property
    def launcher_dir(self) -> Path:
        return self.board / "guest"

    @property
    def launcher(self) -> Path:
        """Host shell script that runs the guest python with its arguments (the guest's sys.executable)."""
        return self.launcher_dir / "python3.11"

    def check_installed(self) -> None:
        """Raise a clear error when set-up has not built the board yet."""
        missing = [p for p in (self.sysroot / GUEST_PYTHON, self.site_packages / "tvm") if not p.exists()]
        if shutil.which("qemu-aarch64") is None:
            missing.append(Path("qemu-aarch64 (host PATH)"))
        if missing:
            raise RuntimeError(
                "emulated board: not set up (missing " + ", ".join(map(str, missing)) + "); run scripts/setup.sh"
            )

    def prefix_for(self, cpu: str) -> Path:
        """The qemu `-L` prefix for a guest that must see `cpu` in /proc/cpuinfo (XNNPACK picks its
        ukernels from it): the sysroot itself for the Cortex-A72 it was made for, else a folder of
        links to the sysroot with that CPU's cpuinfo (made once)."""
        if cpu == QEMU_CPU:
            return self.sysroot
        if cpu not in _CPU_PARTS:
            raise ValueError(f"cpu: no /proc/cpuinfo for {cpu!r}; known: {sorted([QEMU_CPU, *_CPU_PARTS])}")
        prefix = self.board / f"sysroot-{cpu}"
        (prefix / "proc").mkdir(parents=True, exist_ok=True)
        for entry in self.sysroot.iterdir():
            link = prefix / entry.name
            if entry.name != "proc" and not link.is_symlink():
                link.symlink_to(entry.resolve())
        part, revision = _CPU_PARTS[cpu]
        core = (f"BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
                f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: {revision}\n\n")
        cpuinfo = "".join(f"processor\t: {i}\n{core}" for i in range(BOARD_CORES))
        _write_if_changed(prefix / "proc" / "cpuinfo", cpuinfo)
        return prefix

    def qemu_argv(self) -> list[str]:
        """qemu-aarch64 command line prefix that runs the guest python (append python arguments)."""
        qemu = shutil.which("qemu-aarch64") or "qemu-aarch64"
        return [qemu, "-cpu", QEMU_CPU, "-L", str(self.sysroot), str(self.sysroot / GUEST_PYTHON)]

    def env(self, **extra: str) -> dict[str, str]:
        """A fixed, minimal environment for guest processes (host python variables left out)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "PYTHONPATH": f"{self.site_packages}:{self.launcher_dir}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            # Hash randomisation changes dict layouts and so instruction counts between runs.
            "PYTHONHASHSEED": "0",
            "OPENBLAS_NUM_THREADS": "1",
            # TVM's thread pool: as many workers as the board has cores (a guest picks how many a run
            # uses: kernel_guest.set_threads), and workers that sleep when idle instead of spinning,
            # so that no waiting code runs for as long as host timing makes it.
            "TVM_NUM_THREADS": str(BOARD_CORES),
            "TVM_THREAD_POOL_SPIN_COUNT": "0",
            # Load only libtvm_runtime.so under qemu (the compiler library is 240 MB and not needed).
            "TVM_USE_RUNTIME_LIB": "1",
            "TIR_ARMQ_GUEST_PYTHON": str(self.launcher),
        }
        env.update(extra)
        return env

    def install_launchers(self) -> None:
        """Write the guest's sys.executable wrapper and sitecustomize (idempotent)."""
        self.launcher_dir.mkdir(parents=True, exist_ok=True)
        argv = " ".join(f"'{a}'" for a in self.qemu_argv())
        _write_if_changed(self.launcher, f'#!/bin/sh\nexec {argv} "$@"\n', mode=0o755)
        _write_if_changed(self.launcher_dir / "sitecustomize.py", _SITECUSTOMIZE)


def _write_if_changed(path: Path, text: str, mode: int = 0o644) -> None:
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.chmod(mode)
        tmp.replace(path)
