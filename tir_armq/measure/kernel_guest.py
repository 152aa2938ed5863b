"""Run one compiled kernel on the emulated board, calls inside counting regions.

Runs under the GUEST python (qemu-aarch64): only the standard library, numpy and the TVM runtime
(TVM_USE_RUNTIME_LIB=1). It never imports tir_armq, and never numpy.random (seeding it from OS
entropy would change the instruction count between runs).

    kernel_guest.py LIB.so FUNC ARGS.npz [--warmup W] [--calls N] [--out OUT.npy]

ARGS.npz holds the arguments as arr_0, arr_1, ... in call order. FUNC `@entry` calls the module's
entry function (what MetaSchedule's builders export). Each measured call is bracketed by
the plugin's region markers, so the host reads N per-call counts.
"""

import argparse
import os

MARK_START, MARK_STOP = 0x1C0DE001, 0x1C0DE002


def _mark(code: int) -> None:
    try:
        os.lseek(-1, code, 0)  # EBADF by design: the counting plugin sees the syscall
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lib")
    parser.add_argument("func")
    parser.add_argument("args")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--out")
    opts = parser.parse_args()

    import numpy as np
    import tvm

    lib = tvm.runtime.load_module(opts.lib)
    func = lib[lib.entry_name if opts.func == "@entry" else opts.func]
    with np.load(opts.args) as npz:
        arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    args = [tvm.runtime.tensor(a) for a in arrays]
    for _ in range(opts.warmup):
        func(*args)
    for _ in range(opts.calls):
        _mark(MARK_START)
        func(*args)
        _mark(MARK_STOP)
    if opts.out:
        np.save(opts.out, args[-1].numpy())


if __name__ == "__main__":
    main()
