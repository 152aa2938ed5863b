"""The armv7 path: TVM kernels cross-compiled for ARMV7_A7 run under qemu-arm and match numpy exactly."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tvm
from tvm.script import tirx as T

from tir_armq.board.armv7 import Armv7Error, build_harness, run_armv7
from tir_armq.targets import ARMV7_A7

pytestmark = [
    pytest.mark.armv7,
    pytest.mark.skipif(
        not (shutil.which("qemu-arm") and shutil.which(ARMV7_A7.cross_cc)),
        reason="needs apt packages qemu-user and gcc-arm-linux-gnueabihf",
    ),
]

N = 37  # odd on purpose: leaves a vector tail


@T.prim_func
def mac(
    A: T.Buffer((N,), "int16"),
    B: T.Buffer((N,), "int16"),
    D: T.Buffer((N,), "int32"),
    C: T.Buffer((N,), "int32"),
):
    T.func_attr({"global_symbol": "mac", "tirx.noalias": True})
    for i in range(N):
        C[i] = T.Cast("int32", A[i]) * T.Cast("int32", B[i]) + D[i]


@T.prim_func
def scale_nhwc(
    X: T.Buffer((2, 5, 6, 7), "int8"),
    W: T.Buffer((7,), "uint8"),
    Y: T.Buffer((2, 5, 6, 7), "int32"),
):
    T.func_attr({"global_symbol": "scale_nhwc", "tirx.noalias": True})
    for n, h, w, c in T.grid(2, 5, 6, 7):
        Y[n, h, w, c] = T.Cast("int32", X[n, h, w, c]) * T.Cast("int32", W[c])


@T.prim_func
def reverse_parallel(A: T.Buffer((4096,), "int32"), C: T.Buffer((4096,), "int32")):
    # 16 KiB temporary + a parallel loop: exercises the workspace and parallel-launch pointers.
    T.func_attr({"global_symbol": "reverse_parallel", "tirx.noalias": True})
    tmp = T.alloc_buffer((4096,), "int32")
    for i in T.parallel(4096):
        tmp[i] = A[i] * 3
    for i in range(4096):
        C[i] = tmp[4095 - i] - 1


def _compile(func: tvm.tirx.PrimFunc) -> tvm.runtime.Executable:
    return tvm.compile(func, target=ARMV7_A7.tvm_target())


def test_harness_build_is_cached() -> None:
    exe = build_harness()
    mtime = exe.stat().st_mtime_ns
    assert build_harness() == exe and exe.stat().st_mtime_ns == mtime


def test_mac_int16_int32() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**15), 2**15, N, dtype=np.int16)
    b = rng.integers(-(2**15), 2**15, N, dtype=np.int16)
    d = rng.integers(-(2**30), 2**30, N, dtype=np.int32)
    c = np.zeros(N, np.int32)
    out = run_armv7(_compile(mac), "mac", [a, b, d, c])
    # int32 wrap-around is what the ARM code does too; compute the reference in int64 and wrap.
    ref = (a.astype(np.int64) * b.astype(np.int64) + d).astype(np.int32)
    np.testing.assert_array_equal(out[3], ref)
    for got, given in zip(out[:3], (a, b, d)):  # inputs come back untouched
        np.testing.assert_array_equal(got, given)
    assert not c.any()  # the caller's output array is not modified


def test_4d_int8_uint8() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 5, 6, 7), dtype=np.int8)
    w = rng.integers(0, 256, 7, dtype=np.uint8)
    y = np.zeros((2, 5, 6, 7), np.int32)
    out = run_armv7(_compile(scale_nhwc), "scale_nhwc", [x, w, y])
    assert out[2].shape == (2, 5, 6, 7) and out[2].dtype == np.int32
    np.testing.assert_array_equal(out[2], x.astype(np.int32) * w.astype(np.int32))


def test_workspace_and_parallel() -> None:
    a = np.arange(-2048, 2048, dtype=np.int32)
    out = run_armv7(_compile(reverse_parallel), "reverse_parallel", [a, np.zeros_like(a)])
    np.testing.assert_array_equal(out[1], (a * 3)[::-1] - 1)


def test_kernel_error_is_reported() -> None:
    ex = _compile(mac)
    bad = [np.zeros(N, np.int16), np.zeros(N, np.int16), np.zeros(N, np.int32), np.zeros(N, np.int16)]
    with pytest.raises(Armv7Error, match="Mismatched C.dtype"):
        run_armv7(ex, "mac", bad)
    with pytest.raises(Armv7Error, match="__tvm_ffi_nope"):
        run_armv7(ex, "nope", bad)
