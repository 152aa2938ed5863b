"""`tir-armq` command line: one function per subcommand, registered in `_build_parser`.

To add a subcommand: write `cmd_<name>(args) -> int`, then add a parser for it in `_build_parser`
with `set_defaults(func=cmd_<name>)`.
"""

from __future__ import annotations

import argparse
import sys

from tir_armq.board import emulated
from tir_armq.kernels import CONV_KERNELS
from tir_armq.networks import NETWORKS


# ---------------------------------------------------------------------------- board
def cmd_board_start(args: argparse.Namespace) -> int:
    emulated.start(num_servers=args.servers, key=args.key, tracker_port=args.port)
    print(emulated.status().text())
    return 0


def cmd_board_status(args: argparse.Namespace) -> int:
    st = emulated.status()
    print(st.text())
    return 0 if st.running else 3


def cmd_board_stop(args: argparse.Namespace) -> int:
    procs = emulated.stop()
    print(f"board: stopped {len(procs)} process(es)" if procs else "board: nothing was running")
    return 0


# ---------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from tir_armq.demo import run_demo

    return 0 if run_demo(network=args.network, armv7=not args.no_armv7, model=not args.no_model) else 1


# ---------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tir_armq.bench.run import run_bench

    if args.threads != 1 and not args.model:
        raise SystemExit("--threads: with --model only (the per-layer table is on one thread)")
    if args.model and args.threads != 1:
        from tir_armq.bench.model import bench_model_threads

        bench_model_threads(Path(args.model), args.threads, cpu=args.cpu, db_roots=db_roots(args),
                            out_dir=Path(args.out))
        return 0
    if args.model:
        from tir_armq.bench.model import bench_model

        bench_model(Path(args.model), cpu=args.cpu, db_roots=db_roots(args), out_dir=Path(args.out),
                    builtin=not args.no_builtin)
        return 0
    networks = sorted(NETWORKS) if args.network == "all" else [args.network]
    _check_layer_names(args.layers, networks)
    kinds = ["depthwise", "conv"] if args.kind == "all" else [args.kind]
    tvm_default = () if args.no_tvm_default else tuple(args.tvm_default)
    run_bench(networks, kinds, cpu=args.cpu, trials=args.trials, tvm_default=tvm_default,
              xnnpack=not args.no_xnnpack, out_dir=Path(args.out), db_roots=db_roots(args),
              layers=tuple(args.layers or ()))
    return 0


def _check_layer_names(names: list[str] | None, networks: list[str]) -> None:
    """A `--layers` name that no layer of the networks has is a typo, not an empty selection."""
    from tir_armq.networks import network_layers

    known = {layer.name for net in networks for layer in network_layers(net)}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise SystemExit(f"--layers: no layer {', '.join(unknown)} in {', '.join(networks)}")


# ---------------------------------------------------------------------------- tune
def cmd_tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tir_armq.networks import distinct_layers
    from tir_armq.targets import get_target
    from tir_armq.tuning import RpcBoards, as_built_tasks, layer_tasks, tune

    if args.model:
        from tir_armq.model.tasks import model_tasks

        tasks = model_tasks(Path(args.model))
        if args.kernels:
            unknown = sorted(set(args.kernels) - {task.name for task in tasks})
            if unknown:
                raise SystemExit(f"tune --kernels: {', '.join(unknown)}: not a kernel of {args.model}; "
                                 "its kernels: " + ", ".join(task.name for task in tasks))
            tasks = [task for task in tasks if task.name in args.kernels]
    else:
        if args.kernels:
            raise SystemExit("tune --kernels: with --model only (--layers picks --network's layers)")
        layers = [layer for layer, _ in distinct_layers(args.network, None if args.kind == "all" else args.kind)]
        layers = [layer for layer in layers if not args.layers or layer.name in args.layers]
        _check_layer_names(args.layers, [args.network])
        if args.epilogue == "int8":  # as a model build runs the layers: requantize fused
            variant = None if args.variant == "all" else args.variant
            tasks = [task for layer in layers for task in as_built_tasks(layer, variant)]
        else:
            tasks = [task for layer in layers for task in layer_tasks(layer)]
        if args.variant != "all":
            tasks = [task for task in tasks if str(task.func.attrs["tir_armq.kernel"]) == args.variant]
    if not tasks:
        print("tune: nothing to tune: no kernel of these layers has a search space on the chosen variant",
              file=sys.stderr)
        return 2
    boards = None
    if args.tracker:
        host, _, port = args.tracker.partition(":")
        boards = RpcBoards(host, int(port or 9190), args.key)
    from tir_armq.database import SHIPPED, build_databases

    target = get_target(args.target).with_threads(args.threads)
    if args.threads > 1 and (args.tracker or target.isa == "armv7"):
        raise SystemExit("tune --threads: the emulated aarch64 board's estimate only (not --tracker, not armv7)")
    base = None if args.no_shipped else build_databases(target, [SHIPPED])
    tune(tasks, target, Path(args.db), trials=args.trials, boards=boards, remeasure=args.remeasure, base=base)
    return 0


# ---------------------------------------------------------------------------- build / run
def db_roots(args: argparse.Namespace) -> tuple:
    """The databases a build reads: the user's `--db` on top of the shipped records (`--no-db`: none)."""
    from tir_armq.database import SHIPPED

    if args.no_db:
        return ()
    return (SHIPPED,) if args.db is None else (args.db, SHIPPED)


def cmd_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tir_armq.model.build import build_model
    from tir_armq.targets import get_target

    built = build_model(Path(args.model), get_target(args.target).with_threads(args.threads), db_roots(args))
    print(built.kernel_table())
    out = built.export(args.output)
    print(f"wrote {out} (+ {out.name}.json)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from tir_armq.model.run import run_model

    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ModelInputError(f"{args.input}: not a readable .npy array ({err})") from None
    y = run_model(args.library, x)
    if args.output:
        np.save(args.output, y)
        print(f"wrote {args.output}")
    print(f"output {y.dtype}{list(y.shape)}: argmax {int(np.argmax(y.reshape(y.shape[0], -1)[0]))}, "
          f"values {np.array2string(y.reshape(-1)[:8])}{' ...' if y.size > 8 else ''}")
    return 0


class ModelInputError(ValueError):
    pass


# ---------------------------------------------------------------------------- parser
def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tir-armq", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    board = sub.add_parser("board", help="the emulated aarch64 board (TVM RPC under qemu)")
    board_sub = board.add_subparsers(dest="board_command", required=True, metavar="ACTION")
    p = board_sub.add_parser("start", help="start the RPC tracker and emulated RPC servers")
    p.add_argument("--servers", type=int, default=1, help="number of RPC servers for the key (default 1)")
    p.add_argument("--key", default=emulated.DEFAULT_KEY, help="tracker key (default %(default)s)")
    p.add_argument("--port", type=int, default=emulated.DEFAULT_TRACKER_PORT, help="tracker port (default %(default)s)")
    p.set_defaults(func=cmd_board_start)
    board_sub.add_parser("status", help="tracker and servers (exit 3 if not running)").set_defaults(
        func=cmd_board_status
    )
    board_sub.add_parser("stop", help="stop everything `board start` started").set_defaults(func=cmd_board_stop)

    p = sub.add_parser("tune", help="tune a network's layers into the target's database")
    p.add_argument("--network", default="mobilenet_v2", choices=sorted(NETWORKS))
    p.add_argument("--model", help="a .tflite file: tune its kernels as its build uses them (instead of --network)")
    p.add_argument("--kind", default="depthwise", choices=["depthwise", "conv", "all"])
    p.add_argument("--target", default="aarch64", help="aarch64 (cortex-a72), aarch64-a53, armv7 (cortex-a7, "
                   "under qemu-arm)")
    p.add_argument("--trials", type=int, default=64,
                   help="candidates per workload (default 64; 0: the design spaces' start points only)")
    p.add_argument("--variant", default="all", choices=[k.name for k in CONV_KERNELS] + ["all"],
                   help="only this kernel variant (default: every variant that applies and has a search space; "
                   "with --epilogue int8: the layers on this variant where it applies, preferred or not)")
    p.add_argument("--layers", nargs="+", metavar="LAYER",
                   help="only these layers of --network, by name (e.g. conv1x1_s1_14x14x96_to_576)")
    p.add_argument("--kernels", nargs="+", metavar="KERNEL",
                   help="with --model: only these of its kernels, by name (as `build`'s report lists them)")
    p.add_argument("--epilogue", default="int32", choices=["int32", "int8"],
                   help="int32: the accumulators; int8: each layer as a model build runs it (requantize fused)")
    p.add_argument("--db", default="tuning_db", help="database root, one folder per target (default tuning_db; "
                   "tir_armq/tuning_db is the shipped one)")
    p.add_argument("--no-shipped", action="store_true", help="tune from scratch: the shipped records neither "
                   "count towards --trials nor seed the search")
    p.add_argument("--remeasure", type=int, default=0, metavar="N",
                   help="measure each workload's N best stored records again first and store the new times "
                   "(after the cost method changed)")
    p.add_argument("--threads", type=int, default=1, help="tune the kernels as built for N threads, by their "
                   "latency on N threads (records in <db>/<target>-Nthreads)")
    p.add_argument("--tracker", help="HOST:PORT of a TVM RPC tracker with real boards (default: the emulated "
                   "board's cycle estimate)")
    p.add_argument("--key", default="rasp4b", help="the boards' tracker key (with --tracker)")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("bench", help="our kernels vs XNNPACK vs TVM's default space, counted on the board")
    p.add_argument("--network", default="mobilenet_v2", choices=sorted(NETWORKS) + ["all"])
    p.add_argument("--model", help="a .tflite file: the whole model as `build` makes it, one invoke, against "
                   "LiteRT + XNNPACK and LiteRT builtin, by op group (instead of --network's layers)")
    p.add_argument("--no-builtin", action="store_true", help="with --model: leave out LiteRT's builtin kernels")
    p.add_argument("--threads", type=int, default=1, help="with --model: ours built for N threads against LiteRT + "
                   "XNNPACK with num_threads N (and both on 1), latency by the multi-thread estimate")
    p.add_argument("--kind", default="all", choices=["depthwise", "conv", "all"])
    p.add_argument("--layers", nargs="+", metavar="LAYER",
                   help="only these layers of the networks, by name (e.g. conv1x1_s1_14x14x96_to_576)")
    p.add_argument("--cpu", default="cortex-a72", choices=["cortex-a72", "cortex-a53"], help="llvm-mca model")
    p.add_argument("--trials", type=int, default=32, help="trial budget of TVM's default space (default 32)")
    p.add_argument("--no-tvm-default", action="store_true", help="skip TVM's default space (it tunes)")
    p.add_argument("--tvm-default", nargs="+", default=["int32", "int8"], choices=["int32", "int8"],
                   help="the workloads TVM's default space tunes: int32 accumulators, and/or int8 as built")
    p.add_argument("--no-xnnpack", action="store_true", help="skip XNNPACK")
    p.add_argument("--out", default="bench_out", help="folder for table.txt, results.json, cycles.png")
    p.add_argument("--db", help="your own tuning database, on top of the records shipped with tir_armq")
    p.add_argument("--no-db", action="store_true", help="our kernels' fixed schedules only (no tuning records)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("build", help="build an int8/uint8 .tflite model with our kernels into a board library")
    p.add_argument("model", help="the .tflite file")
    p.add_argument("--target", default="aarch64", help="aarch64 (cortex-a72), aarch64-a53, armv7")
    p.add_argument("--db", help="your own tuning database (a folder from `tir-armq tune --db`): its records "
                   "come first, then the records shipped with tir_armq")
    p.add_argument("--no-db", action="store_true", help="the kernels' fixed schedules only (no tuning records)")
    p.add_argument("-o", "--output", required=True, help="the library to write (.so), with <output>.json")
    p.add_argument("--threads", type=int, default=1, help="threads the kernels run on (parallel loops; "
                   "records tuned for this thread count, default 1)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run a library from `build` on the (emulated) aarch64 board")
    p.add_argument("library", help="the .so written by `tir-armq build`")
    p.add_argument("--input", required=True, help="the input array (.npy) in the model's dtype and shape")
    p.add_argument("--output", help="write the output array here (.npy)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="every MobileNet layer on the emulated boards, checked bit-exact")
    p.add_argument("--network", default="mobilenet_v2", choices=sorted(NETWORKS))
    p.add_argument("--no-armv7", action="store_true", help="aarch64 board only")
    p.add_argument("--no-model", action="store_true", help="layers only, not the MobileNetV2 model build")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    from tir_armq.database import DatabaseError
    from tir_armq.model.tflite_import import ModelError

    try:
        return args.func(args)
    except (RuntimeError, ModelError, ModelInputError, DatabaseError) as err:
        print(f"tir-armq: error: {err}", file=sys.stderr)
        return 1
    except (TypeError, ValueError) as err:  # bad input arrays: say what is wrong, no traceback
        if args.command not in ("run", "build"):
            raise
        print(f"tir-armq: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
