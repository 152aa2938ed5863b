"""Run cross-compiled armv7 TVM kernels under qemu-arm, bit-exactly, from the host.

There are no armv7 wheels of TVM, so nothing on the "board" can load a TVM module. Instead the
kernel is exported as a plain armv7 .so and called by a small C harness (armv7_harness.c) that
provides the few runtime symbols the .so needs. Arrays travel as raw bytes in files.

Host needs (apt): qemu-user, gcc-arm-linux-gnueabihf.

`run_armv7_counted` runs the same harness under the insncount qemu plugin (warm-up calls, then
calls bracketed by region markers) and returns the plugin's `Counts` as well: see
`tir_armq.measure.armv7_cost` for instructions and cycles per call.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import tvm
from tvm.support import cc

from tir_armq.paths import board_dir
from tir_armq.measure.plugin import Counts, build_plugin, parse_counts
from tir_armq.targets import ARMV7_A7

HARNESS_SRC = Path(__file__).with_name("armv7_harness.c")
SYSROOT = Path("/usr/arm-linux-gnueabihf")  # armhf libc from gcc-arm-linux-gnueabihf's deps
QEMU = "qemu-arm"
QEMU_CPU = "cortex-a7"  # match ARMV7_A7.mcpu so code needing a newer core traps instead of passing
# -rdynamic: the dlopened kernel resolves TVMFFIErrorSetRaisedFromCStrParts against the harness.
# -marm: the kernels are ARM-mode code (TVM's armv7a triple); Debian's armhf gcc defaults to
# Thumb-2. With the harness in ARM mode too, the code of a measured region (harness + kernel) is
# all ARM, which is what the cost model disassembles it as (see tir_armq.measure.armv7_cost).
CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-rdynamic", "-marm"]
# A fixed environment for counted runs: counts depend on the initial process state.
COUNTED_ENV = {"LC_ALL": "C"}

SUPPORTED_DTYPES = {np.dtype(t): t for t in ("int8", "uint8", "int16", "int32")}


class Armv7Error(RuntimeError):
    """Building the harness or running a kernel under qemu-arm failed."""


def _ffi_include_dir() -> Path:
    # The header (struct layouts, type indices) must match the apache-tvm-ffi that compiled the kernel.
    from tvm_ffi import libinfo

    return Path(libinfo.find_include_path())


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise Armv7Error(f"{name} not found on PATH (apt-get install -y qemu-user gcc-arm-linux-gnueabihf)")
    return path


def build_harness(cache: Path | None = None) -> Path:
    """Compile armv7_harness.c for arm-linux-gnueabihf; return the executable's path.

    `cache` is the directory that holds the harness (default `board_dir() / "armv7"`). The build is
    skipped when a stamp of the source, the FFI header and the flags matches the existing binary.
    """
    out_dir = Path(cache) if cache is not None else board_dir() / "armv7"
    exe, stamp = out_dir / "harness", out_dir / "harness.sha256"
    include = _ffi_include_dir()
    h = hashlib.sha256()
    h.update(HARNESS_SRC.read_bytes())
    h.update((include / "tvm" / "ffi" / "c_api.h").read_bytes())
    h.update(" ".join([ARMV7_A7.cross_cc, *CFLAGS]).encode())
    digest = h.hexdigest()
    if exe.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return exe

    compiler = _require_tool(ARMV7_A7.cross_cc)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build under a unique name and rename, so concurrent builders never see a half-written binary.
    fd, tmp = tempfile.mkstemp(prefix="harness.", dir=out_dir)
    os.close(fd)
    cmd = [compiler, *CFLAGS, f"-I{include}", "-o", tmp, str(HARNESS_SRC), "-ldl"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise Armv7Error(f"building the armv7 harness failed:\n{' '.join(cmd)}\n{proc.stderr}")
    os.replace(tmp, exe)
    stamp.write_text(digest + "\n")
    return exe


def _spec(arr: np.ndarray, path: Path) -> str:
    shape = "x".join(str(d) for d in arr.shape)
    return f"{SUPPORTED_DTYPES[arr.dtype]}:{shape}:{path}"


def _check_arrays(arrays: list[np.ndarray], who: str) -> None:
    for i, arr in enumerate(arrays):
        if not isinstance(arr, np.ndarray) or arr.dtype not in SUPPORTED_DTYPES:
            got = getattr(arr, "dtype", type(arr).__name__)
            supported = list(SUPPORTED_DTYPES.values())
            raise TypeError(f"{who}: array #{i} has dtype {got}; supported: {supported}")


def _run(
    executable: tvm.runtime.Executable | str | os.PathLike[str],
    func_name: str,
    arrays: list[np.ndarray],
    *,
    timeout: float | None,
    harness_opts: list[str],
    plugin_opts: list[str] | None,
    env: dict[str, str] | None = None,
) -> tuple[list[np.ndarray], Path | None, tempfile.TemporaryDirectory]:
    """Run the harness; return the arrays afterwards, the plugin's report (if any) and the
    temporary directory that holds it (the caller cleans it up)."""
    harness = build_harness()
    qemu = _require_tool(QEMU)
    tmp_dir = tempfile.TemporaryDirectory(prefix="tir_armq_armv7_")
    try:
        tmp = Path(tmp_dir.name)
        if isinstance(executable, (str, os.PathLike)):
            lib = Path(executable)
        else:
            lib = tmp / "kernel.so"
            executable.export_library(str(lib), fcompile=cc.cross_compiler(ARMV7_A7.cross_cc))
        paths = [tmp / f"arg{i}.bin" for i in range(len(arrays))]
        for arr, path in zip(arrays, paths):
            # armv7 and the host are both little-endian (the dtype check admits native order only),
            # so the raw C-order bytes are the wire format.
            np.ascontiguousarray(arr).tofile(path)

        report = None
        cmd = [qemu, "-cpu", QEMU_CPU, "-L", str(SYSROOT)]
        if plugin_opts is not None:
            report = tmp / "counts.txt"
            cmd += ["-plugin", ",".join([str(build_plugin()), f"out={report}", *plugin_opts])]
        cmd += [str(harness), *harness_opts, str(lib), func_name]
        cmd += [_spec(arr, path) for arr, path in zip(arrays, paths)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
            msg = f"qemu-arm timed out after {timeout} s running {func_name}:\n{err}"
            raise Armv7Error(msg) from None
        if proc.returncode != 0:
            how = f"exit code {proc.returncode}"
            if proc.returncode < 0:  # qemu-user re-raises the guest's fatal signal (SIGBUS, SIGILL, ...)
                how = f"signal {signal.Signals(-proc.returncode).name}"
            raise Armv7Error(
                f"armv7 kernel {func_name!r} failed under qemu-arm ({how}):\n{proc.stderr.strip()}\n"
                f"command: {' '.join(cmd)}"
            )
        if report is not None and not report.is_file():
            raise Armv7Error(f"the counting plugin wrote no report:\n{proc.stderr.strip()}\ncommand: {' '.join(cmd)}")
        outs = [np.fromfile(path, dtype=arr.dtype).reshape(arr.shape) for arr, path in zip(arrays, paths)]
        return outs, report, tmp_dir
    except BaseException:
        tmp_dir.cleanup()
        raise


def run_armv7(
    executable: tvm.runtime.Executable | str | os.PathLike[str],
    func_name: str,
    arrays: list[np.ndarray],
    *,
    timeout: float | None = 600.0,
) -> list[np.ndarray]:
    """Call `func_name(*arrays)` of an armv7 kernel under qemu-arm; return every array afterwards.

    `executable` is what `tvm.compile(f, target=ARMV7_A7.tvm_target())` returns (it is exported here
    with the cross compiler), or the path of an already exported armv7 .so. TVM PrimFuncs write
    outputs in place, so the returned list has one new array per input, in order; inputs are not
    modified. Raises Armv7Error with the harness' stderr if anything fails.
    """
    _check_arrays(arrays, "run_armv7")
    outs, _, tmp_dir = _run(executable, func_name, arrays, timeout=timeout, harness_opts=[], plugin_opts=None)
    tmp_dir.cleanup()
    return outs


def run_armv7_counted(
    executable: tvm.runtime.Executable | str | os.PathLike[str],
    func_name: str,
    arrays: list[np.ndarray],
    *,
    warmup: int = 2,
    calls: int = 2,
    blocks: str = "region",
    code_bytes: bool = True,
    timeout: float | None = 600.0,
) -> tuple[list[np.ndarray], Counts]:
    """`run_armv7` under the counting plugin: `warmup` unmarked calls, then `calls` calls each in
    its own marked region. Returns the arrays after the last call and the plugin's `Counts`
    (`counts.regions` has one instruction count per measured call; with `code_bytes` every block
    carries its machine code, for the cycle estimate).

    A region holds the instructions from the start marker's `svc` (exclusive) to the stop marker's
    (inclusive): the kernel call plus about ten harness instructions around it. The run has a fixed
    environment, so equal inputs give equal counts.
    """
    _check_arrays(arrays, "run_armv7_counted")
    if warmup < 0 or calls < 1:
        raise ValueError(f"run_armv7_counted: need warmup >= 0 and calls >= 1, got {warmup}, {calls}")
    plugin_opts = [f"blocks={blocks}"] + (["bytes=on"] if code_bytes else [])
    outs, report, tmp_dir = _run(
        executable, func_name, arrays, timeout=timeout,
        harness_opts=["--warmup", str(warmup), "--calls", str(calls)],
        plugin_opts=plugin_opts, env=dict(COUNTED_ENV),
    )
    try:
        counts = parse_counts(report)
    finally:
        tmp_dir.cleanup()
    return outs, counts
