"""Where a layer's estimated cycles go: its executed blocks sorted by executions x llvm-mca cycles,
with the code of the hottest ones. How the depthwise kernel's problems were found (byte-gathered
weights, the split shift of the requantize).

    python scripts/hot_blocks.py dw3x3_s2_14x14x576                # fixed schedule, as built
    python scripts/hot_blocks.py dw3x3_s2_14x14x576 --space 1      # design space 1, initial decisions
    python scripts/hot_blocks.py dw3x3_s2_14x14x576 --start 7      # tuning.start_points(...)[7]
    python scripts/hot_blocks.py dw3x3_s2_14x14x576 --db tuning_db # the tuned record
    python scripts/hot_blocks.py conv1x1_s1_28x28x32_to_192 --variant conv_c2   # a variant not selected
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import tvm

from tir_armq.build import compile_default
from tir_armq.database import TargetDatabase
from tir_armq.measure.cost import CountingGuest, basic_blocks, export_aarch64
from tir_armq.measure.mca import _disassemble, _words
from tir_armq.networks import NETWORKS, network_layers
from tir_armq.targets import AARCH64_A72
from tir_armq.kernels import by_name, design_spaces
from tir_armq.tuning import start_points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("layer", help="a layer name, e.g. dw3x3_s1_14x14x576")
    p.add_argument("--network", default="mobilenet_v2", choices=sorted(NETWORKS))
    p.add_argument("--space", type=int, help="design space index (initial decisions) instead of the fixed schedule")
    p.add_argument("--start", type=int, help="a tuning start point (design spaces and their inlined-stage variants)")
    p.add_argument("--db", help="use the tuned record of this database root (tir_armq/tuning_db: the shipped one)")
    p.add_argument("--variant", help="this conv variant instead of the one a build selects (e.g. conv_c2)")
    p.add_argument("--top", type=int, default=8, help="blocks to list (default 8)")
    p.add_argument("--asm", type=int, default=2, help="blocks to disassemble (default 2)")
    args = p.parse_args()

    layer = next((l for l in network_layers(args.network) if l.name == args.layer), None)
    if layer is None:
        raise SystemExit(f"no layer {args.layer} in {args.network}")
    spec, kernel, arrays = layer.as_built()
    if args.variant:
        spec, inputs = layer.as_built_spec()
        kernel = by_name(args.variant)
        if not kernel.applies(spec, inputs[1]):
            raise SystemExit(f"{args.variant} does not apply to {layer.name}")
        arrays = kernel.arguments(spec, *inputs)
    func = kernel.build(spec)
    target = AARCH64_A72.tvm_target()
    if args.db:
        sch = TargetDatabase(Path(args.db), AARCH64_A72).best_schedule(func)
        if sch is None:
            raise SystemExit(f"{args.db} has no record of {layer.name} as built")
        ex = tvm.compile(sch.mod, target=target)
    elif args.start is not None:
        points = start_points(func, target)
        print(f"start point {args.start} of {len(points)}:\n{points[args.start].trace}")
        ex = tvm.compile(points[args.start].mod, target=target)
    elif args.space is not None:
        ex = tvm.compile(design_spaces(func, target)[args.space].mod, target=target)
    else:
        ex = compile_default(func, AARCH64_A72)

    with tempfile.TemporaryDirectory() as tmp, CountingGuest() as guest:
        cost = guest.measure(export_aarch64(ex, Path(tmp)), kernel.kernel_name(spec), arrays)
        counts, cache = guest.last_counts, guest.cache
    macs = spec.macs
    hot = [b for b in counts.block_list if b.execs_in_regions]
    blocks = basic_blocks(hot)  # qemu's blocks joined where it split straight-line code, as costed
    per = cache.costs(code for code, _ in blocks)
    calls = len(counts.regions)
    rows = sorted(blocks, key=lambda b: -b[1] * per[b[0]])
    print(f"{kernel.kernel_name(spec)}: {cost.cycles / macs:.3f} cycles/MAC, {cost.instructions / macs:.3f} insns/MAC")
    print(f"{'block':>12} {'execs':>9} {'insns':>6} {'cyc/exec':>9} {'share':>6} {'cyc/MAC':>8}")
    for code, execs in rows[: args.top]:
        # A joined run starts with the block of its entry point (the most executed one there).
        addr = max((b for b in hot if code.startswith(b.code.hex())), key=lambda b: b.execs_in_regions).addr
        total = execs * per[code] / calls
        print(f"{addr:#12x} {execs // calls:9d} {len(code) // 8:6d} {per[code]:9.1f} "
              f"{total / cost.cycles:6.1%} {total / macs:8.4f}")
    for code, _ in rows[: args.asm]:
        words = _words(code)
        asm = _disassemble(sorted(set(words)), cache.model)
        print(f"\n--- block ({len(words)} instructions, {per[code]:.1f} cycles)")
        print("\n".join(f"  {asm[w]}" for w in words))


if __name__ == "__main__":
    main()
