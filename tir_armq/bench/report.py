"""The benchmark's table (text and JSON) and plot, from per-layer costs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..measure.cost import Cost
from ..networks import Layer

# ours: the int32 accumulators; ours_int8: int8 output, requantize fused, as a model build runs the
# layer and as XNNPACK's single-layer models compute it; tvm_default(_int8): TVM's default
# MetaSchedule space tuned on the same two workloads.
IMPLS = ("ours", "ours_int8", "xnnpack", "tvm_default", "tvm_default_int8")
# (column, other, base): how many times fewer cycles `base` needs than `other`
RATIOS = (("xnn/ours", "xnnpack", "ours"), ("tvm/ours", "tvm_default", "ours"),
          ("xnn/int8", "xnnpack", "ours_int8"), ("tvm/int8", "tvm_default_int8", "ours_int8"))


@dataclass(frozen=True)
class Row:
    network: str
    layer: Layer
    count: int  # how often the network runs this layer
    costs: dict[str, Cost]  # by implementation, those measured
    source: str = "fixed"  # our int32 kernel: "fixed:<variant>" schedule or "tuned:<variant>"
    source_int8: str = ""  # the same for ours_int8
    kernel: str = ""  # the kernel name of ours_int8, the layer as a model build runs it: the row's name

    @property
    def macs(self) -> int:
        return self.layer.spec().macs

    def ratio(self, other: str, base: str = "ours") -> float | None:
        """How many times fewer estimated cycles `base` needs than `other` (>1: base is faster)."""
        if other not in self.costs or base not in self.costs:
            return None
        return self.costs[other].cycles / self.costs[base].cycles


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[Row]) -> str:
    """Fixed-width table: per layer, instructions and cycles per MAC of each implementation, the
    ratios to XNNPACK and to TVM's default, then totals weighted by how often each layer runs."""
    impls = [i for i in IMPLS if any(i in r.costs for r in rows)]
    width = max([34, *(len(r.kernel or r.layer.name) for r in rows)])
    head = f"{'network':<13} {'kernel':<{width}} {'n':>2} {'MMAC':>7} {'ours from':>22} " + " ".join(
        f"{i + ' ins/MAC':>18} {i + ' cyc/MAC':>18}" for i in impls
    ) + "".join(f" {label:>9}" for label, _, _ in RATIOS) + f" {'int8 from':>22}"
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for i in impls:
            c = r.costs.get(i)
            cells += [_fmt(c and c.instructions / r.macs, "18.3f"), _fmt(c and c.cycles / r.macs, "18.3f")]
        lines.append(
            f"{r.network:<13} {r.kernel or r.layer.name:<{width}} {r.count:>2} {r.macs / 1e6:>7.2f} "
            f"{r.source:>22} " + " ".join(cells)
            + "".join(f" {_fmt(r.ratio(other, base), '9.2f')}" for _, other, base in RATIOS)
            + f" {r.source_int8:>22}"
        )
    lines.append("-" * len(head))
    for network in dict.fromkeys(r.network for r in rows):
        for kind in ("depthwise", "conv"):
            sel = [r for r in rows if r.network == network and r.layer.kind == kind]
            if sel:
                lines.append(_total_line(f"{network} {kind} total", sel, impls, width))
    return "\n".join(lines)


def _total_line(label: str, rows: list[Row], impls: list[str], width: int) -> str:
    macs = sum(r.count * r.macs for r in rows)
    cells, cycles = [], {}
    for i in impls:
        if all(i in r.costs for r in rows):
            ins = sum(r.count * r.costs[i].instructions for r in rows)
            cycles[i] = sum(r.count * r.costs[i].cycles for r in rows)
            cells += [f"{ins / macs:18.3f}", f"{cycles[i] / macs:18.3f}"]
        else:
            cells += [f"{'-':>18}", f"{'-':>18}"]
    def ratio(other: str, base: str = "ours") -> float | None:
        return cycles[other] / cycles[base] if other in cycles and base in cycles else None

    return (f"{label:<{width + 17}} {macs / 1e6:>7.2f} {'':>22} " + " ".join(cells)
            + "".join(f" {_fmt(ratio(other, base), '9.2f')}" for _, other, base in RATIOS))


def to_json(rows: list[Row]) -> list[dict]:
    return [
        {"network": r.network, "layer": r.layer.name, "kernel": r.kernel, "count": r.count, "macs": r.macs,
         "ours_from": r.source,
         "ours_int8_from": r.source_int8,
         **{i: asdict(c) for i, c in r.costs.items()}}
        for r in rows
    ]


def write_outputs(rows: list[Row], out_dir: Path, cpu: str) -> list[Path]:
    """table.txt, results.json and cycles.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "table.txt", out_dir / "results.json", out_dir / "cycles.png"]
    paths[0].write_text(table(rows) + "\n")
    paths[1].write_text(json.dumps({"cpu": cpu, "layers": to_json(rows)}, indent=1) + "\n")
    plot(rows, paths[2], cpu)
    return paths


def plot(rows: list[Row], path: Path, cpu: str) -> None:
    """Estimated cycles per layer, one bar per implementation, XNNPACK/ours ratio above each layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = [i for i in IMPLS if any(i in r.costs for r in rows)]
    width = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(rows)), 5.5))
    for k, impl in enumerate(impls):
        xs = [j + (k - (len(impls) - 1) / 2) * width for j, r in enumerate(rows) if impl in r.costs]
        ys = [r.costs[impl].cycles for r in rows if impl in r.costs]
        ax.bar(xs, ys, width, label=impl)
    for j, r in enumerate(rows):
        ratio = r.ratio("xnnpack")
        if ratio is not None:
            top = max(c.cycles for c in r.costs.values())
            ax.annotate(f"{ratio:.2f}x", (j, top), ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 3)  # room for the ratio labels under the title
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r.network.replace('mobilenet_', '')}:{r.layer.name}" for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel(f"estimated cycles per call ({cpu}, llvm-mca)")
    ax.set_title("int8 layers on the emulated board; label: XNNPACK cycles / ours")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
