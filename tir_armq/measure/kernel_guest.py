"""Run compiled kernels on the emulated board, each call inside a counting region.

Runs under the GUEST python (qemu-aarch64): only the standard library, numpy and the TVM runtime
(TVM_USE_RUNTIME_LIB=1). It never imports tir_armq, and never numpy.random (seeding it from OS
entropy would change the instruction count between runs).

One kernel:   kernel_guest.py LIB.so FUNC ARGS.npz [--warmup W] [--calls N] [--out OUT.npy] [--maps FILE]
                               [--threads T]
Many kernels: kernel_guest.py --serve
    reads one JSON request per line on stdin ({"lib", "func", "args", "warmup", "calls", and
    optionally "threads", "maps"}), measures
    it, asks the plugin to flush its report, and answers one JSON line ({"ok": true} or
    {"ok": false, "error": ...}). Starting the guest costs seconds; a request costs the kernel.

ARGS.npz holds the arguments as arr_0, arr_1, ... in call order. FUNC `@entry` calls the module's
entry function (what MetaSchedule's builders export); `@vm:NAME` calls function NAME of a Relax VM
library (a whole model) through the runtime's VirtualMachine. `--maps FILE` copies the guest's
/proc/self/maps there at the end (where LIB.so is loaded: hot code is named by its symbols).

`--threads T` runs parallel loops on T threads of TVM's thread pool (the board's TVM_NUM_THREADS is
the most it can take) and, for T > 1, asks the plugin to split the region at every parallel launch
(TVMBackendParallelLaunch), so that each launch's threads can be costed on their own
(`tir_armq.measure.threads`).
"""

import argparse
import json
import os
import sys

MARK_START, MARK_STOP, MARK_FLUSH, MARK_SPLIT_AT = 0x1C0DE001, 0x1C0DE002, 0x1C0DE003, 0x1C0DE004
SYS_LSEEK = 62  # aarch64
PARALLEL_LAUNCH = "TVMBackendParallelLaunch"
KBIG = 1  # TVM's ThreadGroup::AffinityMode kBig


def _mark(code):
    try:
        os.lseek(-1, code, 0)  # EBADF by design: the counting plugin sees the syscall
    except OSError:
        pass


def _split_at(address):
    import ctypes

    # syscall(2), not os.lseek: the address must reach the plugin whole (see insncount.c).
    ctypes.CDLL(None).syscall(ctypes.c_long(SYS_LSEEK), ctypes.c_long(-1), ctypes.c_long(MARK_SPLIT_AT),
                              ctypes.c_long(address))


def set_threads(threads):
    """Run parallel loops on `threads` threads; for more than one, split regions at each launch."""
    import ctypes

    import tvm

    # The pool sizes itself by the host's cores as qemu-user reports them; a board's are set here.
    tvm.get_global_func("runtime.config_threadpool")(KBIG, threads)
    if threads > 1:
        runtime = ctypes.CDLL(tvm.libinfo.find_libtvm_runtime())  # the loaded library's handle
        _split_at(ctypes.cast(getattr(runtime, PARALLEL_LAUNCH), ctypes.c_void_p).value)


def measure(lib_path, func_name, args_path, warmup, calls, out=None, maps=None, threads=1):
    import numpy as np
    import tvm

    set_threads(threads)
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
            measure(request["lib"], request["func"], request["args"], request["warmup"], request["calls"],
                    maps=request.get("maps"), threads=request.get("threads", 1))
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
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()
    measure(opts.lib, opts.func, opts.args, opts.warmup, opts.calls, opts.out, opts.maps, opts.threads)


if __name__ == "__main__":
    main()
