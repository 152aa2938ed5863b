"""Run compiled kernels on the emulated board, each call inside a counting region.

Runs under the GUEST python (qemu-aarch64): only the standard library, numpy and the TVM runtime
(TVM_USE_RUNTIME_LIB=1). It never imports tir_armq, and never numpy.random (seeding it from OS
entropy would change the instruction count between runs).

One kernel:   kernel_guest.py LIB.so FUNC ARGS.npz [--warmup W] [--calls N] [--out OUT.npy] [--maps FILE]
Many kernels: kernel_guest.py --serve
    reads one JSON request per line on stdin ({"lib", "func", "args", "warmup", "calls"}), measures
    it, asks the plugin to flush its report, and answers one JSON line ({"ok": true} or
    {"ok": false, "error": ...}). Starting the guest costs seconds; a request costs the kernel.

ARGS.npz holds the arguments as arr_0, arr_1, ... in call order. FUNC `@entry` calls the module's
entry function (what MetaSchedule's builders export); `@vm:NAME` calls function NAME of a Relax VM
library (a whole model) through the runtime's VirtualMachine. `--maps FILE` copies the guest's
/proc/self/maps there at the end (where LIB.so is loaded: hot code is named by its symbols).
"""

import argparse
import json
import os
import sys

MARK_START, MARK_STOP, MARK_FLUSH = 0x1C0DE001, 0x1C0DE002, 0x1C0DE003


def _mark(code):
    try:
        os.lseek(-1, code, 0)  # EBADF by design: the counting plugin sees the syscall
    except OSError:
        pass


def measure(lib_path, func_name, args_path, warmup, calls, out=None, maps=None):
    import numpy as np
    import tvm

    lib = tvm.runtime.load_module(lib_path)
    if func_name.startswith("@vm:"):
        from tvm.runtime.vm import VirtualMachine

        func = VirtualMachine(lib, tvm.cpu())[func_name[len("@vm:"):]]
    else:
        func = lib[lib.entry_name if func_name == "@entry" else func_name]
    with np.load(args_path) as npz:
        arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    args = [tvm.runtime.tensor(a) for a in arrays]
    for _ in range(warmup):
        func(*args)
    for _ in range(calls):
        _mark(MARK_START)
        func(*args)
        _mark(MARK_STOP)
    if out:
        np.save(out, args[-1].numpy())
    if maps:
        with open("/proc/self/maps") as src, open(maps, "w") as dst:
            dst.write(src.read())


def serve():
    for line in sys.stdin:
        request = json.loads(line)
        try:
            measure(request["lib"], request["func"], request["args"], request["warmup"], request["calls"])
            reply = {"ok": True}
        except Exception as err:  # report, flush, and stay up for the next kernel
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        _mark(MARK_FLUSH)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def main():
    if sys.argv[1:] == ["--serve"]:
        serve()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("lib")
    parser.add_argument("func")
    parser.add_argument("args")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("--maps")
    opts = parser.parse_args()
    measure(opts.lib, opts.func, opts.args, opts.warmup, opts.calls, opts.out, opts.maps)


if __name__ == "__main__":
    main()
