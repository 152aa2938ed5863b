"""Run one single-op int8 TFLite model with the LiteRT interpreter: run by the GUEST python.

    python3.11 -P litert_guest.py MODEL [--warmup 10] [--invokes 5] [--no-xnnpack] [--input FILE] [--out FILE]
                                        [--maps FILE] [--dump FILE]

This file runs under qemu-aarch64 on the emulated board (host side: `tir_armq/bench/litert.py`),
so it imports only the standard library, numpy and ai_edge_litert: never tvm or tir_armq, and never
numpy.random (importing it seeds a global RandomState from OS entropy, which changes instruction
counts from run to run; EMULATED_BOARD.md pitfall 4). The input is filled from a fixed integer hash,
or read from `--input FILE` (numpy .npy: the model-build tests compare outputs on given inputs).

One thread. By default LiteRT applies its default delegate, XNNPACK, to int8 models; `--no-xnnpack`
uses TFLite's own builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES).

After `--warmup` invokes (per-invoke counts settle after ~10: CPython specialisation), each of the
`--invokes` invokes is wrapped in region markers for the counting qemu plugin:
`os.lseek(-1, 0x1C0DE001, 0)` before and `os.lseek(-1, 0x1C0DE002, 0)` after (the syscall fails
with EBADF; the plugin sees it). `--out FILE` writes the output tensor of the last invoke with
numpy.save (keep FILE off sys.path and out of the cwd when counting: pitfall 5). `--maps FILE`
copies the guest's /proc/self/maps (where libpywrap_litert_common.so, holding the XNNPACK
ukernels, is loaded), to name the hot translation blocks the counting plugin reports.
`--split-at LIB:OFFSET` tells the plugin to cut the counted invokes wherever the code at OFFSET of
the loaded LIB is entered, with a flush after each invoke: one report per XNNPACK operator when
OFFSET is that of xnn_run_operator_with_index.
"""

import argparse
import ctypes
import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

MARK_START = 0x1C0DE001
MARK_STOP = 0x1C0DE002
MARK_FLUSH = 0x1C0DE003
MARK_SPLIT_AT = 0x1C0DE004
SYS_LSEEK = 62  # aarch64


def _mark(code):
    try:
        os.lseek(-1, code, 0)
    except OSError:
        pass


def _split_at(lib, offset):
    """Point the plugin's split at `offset` in the loaded `lib`: syscall(2), so the address reaches
    the plugin whole (lseek's `whence` is an int)."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[5]) == lib and int(parts[2], 16) == 0:
                base = int(parts[0].split("-")[0], 16)
                break
        else:
            raise SystemExit(f"--split-at: {lib} is not loaded")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall(ctypes.c_long(SYS_LSEEK), ctypes.c_long(-1), ctypes.c_long(MARK_SPLIT_AT),
                 ctypes.c_long(base + offset))


def fill(shape, dtype):
    """Deterministic pseudo-random values over the dtype's range (an integer hash of the index)."""
    n = 1
    for d in shape:
        n *= int(d)
    i = np.arange(n, dtype=np.uint32)
    h = i * np.uint32(2654435761) + np.uint32(0x9E3779B9)  # wraps mod 2**32
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    info = np.iinfo(dtype)
    span = int(info.max) - int(info.min) + 1
    vals = (h % np.uint32(span)).astype(np.int64) + int(info.min)
    return vals.astype(dtype).reshape(tuple(int(d) for d in shape))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--invokes", type=int, default=5)
    ap.add_argument("--no-xnnpack", action="store_true", help="TFLite builtin kernels, no default delegate")
    ap.add_argument("--input", help="the input tensor (numpy .npy; default: a fixed hash of the index)")
    ap.add_argument("--out", help="write the output tensor (numpy .npy) here")
    ap.add_argument("--maps", help="copy /proc/self/maps here at the end (to map hot code addresses to symbols)")
    ap.add_argument("--split-at", help="LIB:HEX_OFFSET: one report per entry of that code (see above)")
    ap.add_argument("--dump", help="write every tensor after the last invoke here (numpy .npz, keyed t<index>)")
    ap.add_argument("--threads", type=int, default=1, help="the interpreter's num_threads (XNNPACK's pool)")
    args = ap.parse_args(argv)

    kwargs = {"model_path": args.model, "num_threads": args.threads}
    if args.no_xnnpack:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if args.dump:
        kwargs["experimental_preserve_all_tensors"] = True
    interp = Interpreter(**kwargs)
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    (outp,) = interp.get_output_details()
    x = np.load(args.input, allow_pickle=False) if args.input else fill(inp["shape"], inp["dtype"])
    interp.set_tensor(inp["index"], x)

    invoke = interp.invoke
    for _ in range(args.warmup):
        invoke()
    if args.split_at:
        lib, offset = args.split_at.rsplit(":", 1)
        _split_at(lib, int(offset, 16))
    for _ in range(args.invokes):
        _mark(MARK_START)
        invoke()
        _mark(MARK_STOP)
        if args.split_at:
            _mark(MARK_FLUSH)

    if args.out:
        np.save(args.out, interp.get_tensor(outp["index"]), allow_pickle=False)
    if args.dump:
        tensors = {}
        for detail in interp.get_tensor_details():
            try:
                tensors[f"t{detail['index']}"] = interp.get_tensor(detail["index"])
            except ValueError:  # tensors without data (e.g. scratch)
                pass
        np.savez(args.dump, **tensors)
    if args.maps:
        with open("/proc/self/maps") as src, open(args.maps, "w") as dst:
            dst.write(src.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
