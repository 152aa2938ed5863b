"""Run a case's kernel, with its variant's fixed schedule, on the host, the emulated aarch64 board,
or ARMv7 under qemu-arm; each returns the layer's output (a kernel's padded channels dropped)."""

from __future__ import annotations

import numpy as np
import tvm

from cases import Case
from tir_armq.build import compile_default
from tir_armq.targets import AARCH64_A72, ARMV7_A7


def _layer_output(case: Case, out: np.ndarray) -> np.ndarray:
    return out[..., : case.spec.out_channels]


def run_host(case: Case, scheduled: bool = True) -> np.ndarray:
    func = case.kernel.build(case.spec)
    ex = compile_default(func) if scheduled else tvm.compile(func, target="llvm")
    args = [tvm.runtime.tensor(a) for a in case.arguments()]
    ex[case.name](*args)
    return _layer_output(case, args[-1].numpy())


def run_board(case: Case, key: str, threads: int = 1) -> np.ndarray:
    """On the board; with `threads` > 1 built for (parallel loops) and run on that many threads."""
    from tir_armq.board.emulated import run_on_board

    ex = compile_default(case.kernel.build(case.spec), AARCH64_A72.with_threads(threads))
    return _layer_output(case, run_on_board(ex, case.name, case.arguments(), key=key, threads=threads)[-1])


def run_armv7(case: Case) -> np.ndarray:
    from tir_armq.board.armv7 import run_armv7 as run

    ex = compile_default(case.kernel.build(case.spec), ARMV7_A7)
    return _layer_output(case, run(ex, case.name, case.arguments())[-1])


def tune_in_subprocess(code: str) -> None:
    """Run `code` (which calls `tune`) in a fresh python with the tests folder importable and `Path`,
    `Task`, `tune`, `AARCH64_A72`, `ARMV7_A7` in scope; raises if it fails."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    prelude = (f"import sys; sys.path.insert(0, {str(tests)!r})\n"
               "from pathlib import Path\nfrom tir_armq.tuning import Task, tune\n"
               "from tir_armq.targets import AARCH64_A72, ARMV7_A7\n")
    subprocess.run([sys.executable, "-c", prelude + code], check=True, cwd=tests.parent)
