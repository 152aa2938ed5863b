"""Host side of the XNNPACK benchmark: run `litert_guest.py` under qemu-aarch64 on the emulated board.

The guest python gets the board's sysroot (with its faked Cortex-A72 /proc/cpuinfo, so XNNPACK picks
the kernels a Raspberry Pi 4 would run; EMULATED_BOARD.md "Match the emulated CPU to the board"),
`-cpu cortex-a72`, and PYTHONPATH = pyarm64-litert (ai-edge-litert, from `scripts/setup.sh` step
board-litert) + pyarm64 (numpy). Counts depend on the whole initial state of the process, so the
command line and environment are fixed: `python3.11 -P` (the script's directory is not put on
sys.path: pitfall 5) and a minimal environment built here, not inherited (pitfall 6).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tir_armq.board.guest import GUEST_PYTHON, QEMU_CPU, Guest

GUEST_SCRIPT = Path(__file__).resolve().parent / "litert_guest.py"


def litert_site_packages(guest: Guest) -> Path:
    """The aarch64 ai-edge-litert wheel and its dependencies (numpy excluded)."""
    return guest.board / "pyarm64-litert"


def litert_env(guest: Guest) -> dict[str, str]:
    """The fixed guest environment of a LiteRT run (no host variables except PATH's fallback)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONPATH": f"{litert_site_packages(guest)}:{guest.site_packages}",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def litert_argv(
    model: Path | str,
    *,
    warmup: int = 10,
    invokes: int = 5,
    xnnpack: bool = True,
    out: Path | str | None = None,
    maps: Path | str | None = None,
    plugin_args: list[str] | None = None,
    plugin: Path | str | None = None,
    guest: Guest | None = None,
    input: Path | str | None = None,
    dump: Path | str | None = None,
    split_at: str | None = None,
    threads: int = 1,
) -> list[str]:
    """The full qemu-aarch64 command line of one guest run (see `run_litert_guest`)."""
    guest = guest or Guest.default()
    qemu = shutil.which("qemu-aarch64") or "qemu-aarch64"
    cmd = [qemu, "-cpu", QEMU_CPU, "-L", str(guest.sysroot)]
    if plugin_args is not None or plugin is not None:
        if plugin is None:
            from tir_armq.measure.plugin import build_plugin  # lazily: only counted runs need it

            plugin = build_plugin()
        cmd += ["-plugin", ",".join([str(plugin), *(plugin_args or [])])]
    cmd += [str(guest.sysroot / GUEST_PYTHON), "-P", str(GUEST_SCRIPT), str(model)]
    cmd += ["--warmup", str(warmup), "--invokes", str(invokes)]
    if threads != 1:
        cmd += ["--threads", str(threads)]
    if not xnnpack:
        cmd.append("--no-xnnpack")
    if input is not None:
        cmd += ["--input", str(input)]
    if dump is not None:
        cmd += ["--dump", str(dump)]
    if out is not None:
        cmd += ["--out", str(out)]
    if maps is not None:
        cmd += ["--maps", str(maps)]
    if split_at is not None:
        cmd += ["--split-at", split_at]
    return cmd


def check_litert_installed(guest: Guest) -> None:
    missing = [
        p
        for p in (guest.sysroot / GUEST_PYTHON, guest.site_packages / "numpy", litert_site_packages(guest) / "ai_edge_litert")
        if not p.exists()
    ]
    if shutil.which("qemu-aarch64") is None:
        missing.append(Path("qemu-aarch64 (host PATH)"))
    if missing:
        raise RuntimeError(
            "LiteRT on the emulated board: not set up (missing " + ", ".join(map(str, missing)) + "); "
            "run scripts/setup.sh (step board-litert)"
        )


def run_litert_guest(
    model: Path,
    *,
    warmup: int = 10,
    invokes: int = 5,
    xnnpack: bool = True,
    plugin_args: list[str] | None = None,
    plugin: Path | str | None = None,
    out: Path | str | None = None,
    maps: Path | str | None = None,
    guest: Guest | None = None,
    cwd: Path | str = "/",
    timeout: float | None = 600,
    check: bool = True,
    input: Path | str | None = None,
    dump: Path | str | None = None,
) -> subprocess.CompletedProcess:
    """Run one single-op TFLite model on the emulated board: `warmup` invokes, then `invokes` marked ones.

    xnnpack: LiteRT's default delegate (XNNPACK) on, or TFLite's builtin kernels only.
    plugin_args: when given (even `[]`), qemu gets `-plugin <so>,<args...>`, e.g.
        `["out=/tmp/c.txt", "blocks=region"]`; `<so>` is `plugin`, or else the counting plugin of
        `tir_armq.measure.plugin` (built if needed).
    out: file the guest writes the output tensor to (numpy .npy); keep it out of `cwd` and off sys.path.
    input: the input tensor (numpy .npy) instead of the fixed hash fill.
    dump: file (.npz) the guest writes every tensor of the last invoke to (key `t<index>`).
    maps: file the guest copies its /proc/self/maps to at the end (to map hot code to symbols).
    cwd: the guest's working directory, fixed (default "/") because it is part of the process state.
    Returns the CompletedProcess (stdout/stderr as bytes, both pipes: pitfall 6); raises
    RuntimeError on a non-zero exit when `check`.
    """
    guest = guest or Guest.default()
    check_litert_installed(guest)
    cmd = litert_argv(
        model, warmup=warmup, invokes=invokes, xnnpack=xnnpack, out=out, maps=maps,
        plugin_args=plugin_args, plugin=plugin, guest=guest, input=input, dump=dump,
    )
    res = subprocess.run(cmd, env=litert_env(guest), cwd=cwd, capture_output=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(
            f"LiteRT guest run failed (exit {res.returncode}): {' '.join(cmd)}\n"
            + res.stderr.decode(errors="replace")[-4000:]
        )
    return res
