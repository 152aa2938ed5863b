"""Run a case's default-scheduled kernel on the host, the emulated aarch64 board, or ARMv7 under qemu-arm."""

from __future__ import annotations

import numpy as np
import tvm

from cases import Case
from tir_armq.build import compile_default
from tir_armq.targets import AARCH64_A72, ARMV7_A7


def run_host(case: Case, scheduled: bool = True) -> np.ndarray:
    func = case.spec.prim_func()
    ex = compile_default(func) if scheduled else tvm.compile(func, target="llvm")
    args = [tvm.runtime.tensor(a) for a in case.spec.arguments(*case.inputs())]
    ex[case.spec.op_name](*args)
    return args[-1].numpy()


def run_board(case: Case, key: str) -> np.ndarray:
    from tir_armq.board.emulated import run_on_board

    ex = compile_default(case.spec.prim_func(), AARCH64_A72)
    return run_on_board(ex, case.spec.op_name, case.spec.arguments(*case.inputs()), key=key)[-1]


def run_armv7(case: Case) -> np.ndarray:
    from tir_armq.board.armv7 import run_armv7 as run

    ex = compile_default(case.spec.prim_func(), ARMV7_A7)
    return run(ex, case.spec.op_name, case.spec.arguments(*case.inputs()))[-1]


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
