"""`tir-armq bench`: every distinct layer of the chosen networks, ours vs XNNPACK vs TVM's default
space, counted on the emulated board."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..measure.cost import Cost, CountingGuest
from ..measure.mca import CPU_MODELS, BlockCostCache
from ..database import SHIPPED, build_databases
from ..networks import distinct_layers
from ..targets import AARCH64_A72
from .costs import ours_cost, ours_int8_cost, tvm_default_cost, xnnpack_cost
from .report import Row, table, write_outputs


def run_bench(
    networks: list[str],
    kinds: list[str],
    *,
    cpu: str = "cortex-a72",
    trials: int = 32,
    tvm_default: tuple[str, ...] = ("int32", "int8"),
    xnnpack: bool = True,
    out_dir: Path = Path("bench_out"),
    db_roots: tuple = (SHIPPED,),
    layers: tuple[str, ...] = (),
) -> list[Row]:
    """Measure, print progress and the table, write table.txt / results.json / cycles.png. Our
    kernels take their records from `db_roots` (first that has one; `()`: fixed schedules).
    `layers`: only the layers of these names (all when empty)."""
    model = CPU_MODELS[cpu]
    db = build_databases(AARCH64_A72, db_roots, sys.stderr)
    cache = BlockCostCache(model)
    work = [(net, layer, n) for net in networks for kind in kinds for layer, n in distinct_layers(net, kind)
            if not layers or layer.name in layers]
    rows: list[Row] = []
    measured: dict = {}  # a layer shared by both networks is measured once
    sources: dict = {}  # where our kernels came from ("fixed:<variant>", "tuned:<variant>"), the kernel name
    start = time.monotonic()
    with CountingGuest(model) as guest:
        for i, (net, layer, count) in enumerate(work, 1):
            if layer not in measured:
                ours, source = ours_cost(layer, guest, db)
                ours_int8, source_int8 = ours_int8_cost(layer, guest, db)
                spec, kernel, _ = layer.as_built()
                sources[layer] = (source, source_int8, kernel.kernel_name(spec))
                costs: dict[str, Cost] = {"ours": ours, "ours_int8": ours_int8}
                if xnnpack:
                    costs["xnnpack"] = xnnpack_cost(layer, model, cache)
                for epilogue in tvm_default:
                    best = tvm_default_cost(layer, guest, trials, model, epilogue)
                    if best is None:
                        print(f"[bench] {layer.name}: no valid candidate in TVM's default space ({epilogue} out)",
                              file=sys.stderr)
                    else:
                        costs["tvm_default" if epilogue == "int32" else f"tvm_default_{epilogue}"] = best
                measured[layer] = costs
            rows.append(Row(net, layer, count, measured[layer], *sources[layer]))
            ratio = rows[-1].ratio("xnnpack")
            print(f"[bench {i}/{len(work)}, {time.monotonic() - start:.0f} s] {net} {sources[layer][2]}: "
                  f"ours {measured[layer]['ours'].cycles / rows[-1].macs:.3f} cycles/MAC "
                  f"(int8 out {measured[layer]['ours_int8'].cycles / rows[-1].macs:.3f})"
                  + (f", XNNPACK/ours {ratio:.2f}x" if ratio else ""), file=sys.stderr, flush=True)
    print(table(rows))
    for path in write_outputs(rows, out_dir, cpu):
        print(f"wrote {path}")
    return rows
