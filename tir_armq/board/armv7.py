"""Run cross-compiled armv7 TVM kernels under qemu-arm, bit-exactly, from the host.

There are no armv7 wheels of TVM, so nothing on the "board" can load a TVM module. Instead the
kernel is exported as a plain armv7 .so and called by a small C harness (armv7_harness.c) that
provides the few runtime symbols the .so needs. Arrays travel as raw bytes in files.

Host needs (apt): qemu-user, gcc-arm-linux-gnueabihf.
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
from tir_armq.targets import ARMV7_A7

HARNESS_SRC = Path(__file__).with_name("armv7_harness.c")
SYSROOT = Path("/usr/arm-linux-gnueabihf")  # armhf libc from gcc-arm-linux-gnueabihf's deps
QEMU = "qemu-arm"
QEMU_CPU = "cortex-a7"  # match ARMV7_A7.mcpu so code needing a newer core traps instead of passing
# -rdynamic: the dlopened kernel resolves TVMFFIErrorSetRaisedFromCStrParts against the harness.
CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-rdynamic"]

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
    for i, arr in enumerate(arrays):
        if not isinstance(arr, np.ndarray) or arr.dtype not in SUPPORTED_DTYPES:
            got = getattr(arr, "dtype", type(arr).__name__)
            supported = list(SUPPORTED_DTYPES.values())
            raise TypeError(f"run_armv7: array #{i} has dtype {got}; supported: {supported}")
    harness = build_harness()
    qemu = _require_tool(QEMU)

    with tempfile.TemporaryDirectory(prefix="tir_armq_armv7_") as tmp_str:
        tmp = Path(tmp_str)
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

        cmd = [qemu, "-cpu", QEMU_CPU, "-L", str(SYSROOT), str(harness), str(lib), func_name]
        cmd += [_spec(arr, path) for arr, path in zip(arrays, paths)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
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
        return [np.fromfile(path, dtype=arr.dtype).reshape(arr.shape) for arr, path in zip(arrays, paths)]
