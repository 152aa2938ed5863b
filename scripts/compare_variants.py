"""Pointwise layers on each conv variant that applies, side by side on the A72 estimate: the layer as
a model build runs it (`Layer.as_built_spec`: int8 out, requantize fused) on every named variant,
its fixed schedule and, with `--db`, its best record there (`--tune N` first tunes N trials per
variant into that database: `tir-armq tune --variant` for layers outside the network tables too).

    python scripts/compare_variants.py conv1x1_s1_112x112x16_to_96 48x48x8_to_48
    python scripts/compare_variants.py --network mobilenet_v1 --all --db c2db --tune 8

A layer is a network layer's name or `HxWxK_to_OC` (a 1x1 stride-1 conv of that shape).
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import tvm

from tir_armq.build import compile_default
from tir_armq.database import TargetDatabase
from tir_armq.kernels import by_name
from tir_armq.measure.cost import CountingGuest, export_aarch64
from tir_armq.networks import NETWORKS, Layer, distinct_layers, network_layers
from tir_armq.targets import AARCH64_A72
from tir_armq.tuning import Task, tune


def layer_of(name: str, network: str) -> Layer:
    found = next((layer for layer in network_layers(network) if layer.name == name), None)
    if found is not None:
        return found
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)_to_(\d+)", name)
    if m is None or m[1] != m[2]:
        raise SystemExit(f"{name}: neither a layer of {network} nor HxHxK_to_OC")
    return Layer("conv", int(m[1]), int(m[3]), int(m[4]), 1, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("layers", nargs="*", help="layer names or HxHxK_to_OC")
    p.add_argument("--network", default="mobilenet_v2", choices=sorted(NETWORKS))
    p.add_argument("--all", action="store_true", help="every distinct 1x1 conv of --network")
    p.add_argument("--variants", nargs="+", default=["conv_c8", "conv_c2"])
    p.add_argument("--db", help="a database root: also measure each variant's best record there")
    p.add_argument("--tune", type=int, default=0, help="tune this many trials per variant into --db first")
    args = p.parse_args()

    layers = [layer_of(name, args.network) for name in args.layers]
    if args.all:
        layers += [layer for layer, _ in distinct_layers(args.network, "conv") if layer.kernel == 1]
    work = []  # (layer, variant, spec, func, arguments)
    for layer in layers:
        spec, inputs = layer.as_built_spec()
        for variant in args.variants:
            kernel = by_name(variant)
            if kernel.applies(spec, inputs[1]):
                work.append((layer, kernel, spec, kernel.build(spec), kernel.arguments(spec, *inputs)))
    db = None
    if args.db:
        if args.tune:
            tasks = [Task(kernel.kernel_name(spec), func) for _, kernel, spec, func, _ in work]
            tune(tasks, AARCH64_A72, Path(args.db), trials=args.tune)
        db = TargetDatabase(Path(args.db), AARCH64_A72)
    target = AARCH64_A72.tvm_target()
    print(f"{'layer':36} {'variant':8} {'fixed cyc/MAC':>13} {'insn/MAC':>8} {'tuned cyc/MAC':>13} {'insn/MAC':>8}",
          flush=True)
    with CountingGuest() as guest, tempfile.TemporaryDirectory() as tmp:
        for i, (layer, kernel, spec, func, arguments) in enumerate(work):
            cells = []
            sch = db.best_schedule(func) if db is not None else None
            for ex in (compile_default(func, AARCH64_A72), sch and tvm.compile(sch.mod, target=target)):
                if ex is None:
                    cells.append(f"{'-':>13} {'-':>8}")
                    continue
                out = Path(tempfile.mkdtemp(dir=tmp))
                cost = guest.measure(export_aarch64(ex, out), kernel.kernel_name(spec), arguments)
                cells.append(f"{cost.cycles / spec.macs:13.3f} {cost.instructions / spec.macs:8.3f}")
            print(f"{layer.name:36} {kernel.name:8} {' '.join(cells)}", flush=True)


if __name__ == "__main__":
    main()
