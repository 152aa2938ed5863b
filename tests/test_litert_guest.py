"""The XNNPACK side of the benchmark: a committed single-layer model runs under LiteRT on the
emulated aarch64 board (qemu-aarch64, Cortex-A72), with and without XNNPACK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tir_armq.bench.litert import run_litert_guest
from tir_armq.board.guest import Guest
from tir_armq.paths import repo_root

MODEL = repo_root() / "tir_armq" / "bench" / "models" / "dw3x3_s1_7x7x960.tflite"


@pytest.fixture(scope="module")
def guest():
    g = Guest.default()
    if not (g.board / "pyarm64-litert" / "ai_edge_litert").is_dir():
        pytest.skip("LiteRT not installed on the emulated board: run scripts/setup.sh (step board-litert)")
    return g


@pytest.mark.board
@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin"])
def test_litert_guest_runs(guest, tmp_path: Path, xnnpack: bool):
    out = tmp_path / "out.npy"
    res = run_litert_guest(MODEL, warmup=1, invokes=2, xnnpack=xnnpack, out=out, guest=guest, timeout=120)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    y = np.load(out)
    assert y.shape == (1, 7, 7, 960) and y.dtype == np.int8
    assert len(np.unique(y)) > 16  # a real output, not a constant tensor
    # XNNPACK is the default delegate only when it is on
    assert (b"XNNPACK" in res.stderr) == xnnpack


@pytest.mark.board
def test_litert_xnnpack_close_to_builtin(guest, tmp_path: Path):
    """Both paths compute the same layer: XNNPACK's fp32 requantize differs from TFLite's fixed point
    by at most 1 LSB (EMULATED_BOARD.md section 6)."""
    ys = []
    for xnnpack in (True, False):
        out = tmp_path / f"out_{xnnpack}.npy"
        run_litert_guest(MODEL, warmup=0, invokes=1, xnnpack=xnnpack, out=out, guest=guest, timeout=120)
        ys.append(np.load(out).astype(np.int32))
    assert np.abs(ys[0] - ys[1]).max() <= 1
