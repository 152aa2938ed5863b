"""`tir-armq bench --model`: a whole model as `tir-armq build` makes it, one invoke, against LiteRT +
XNNPACK and LiteRT's builtin kernels, all three counted by the same plugin in the same guest, and
where each one's cycles go.

Every executed block is named by the symbol it lies in (the guest's /proc/self/maps and the ELF
symbol tables: our library keeps each kernel under its kernel name, LiteRT's keeps XNNPACK's ukernels
and tflite::), and symbols are gathered into groups of TFLite ops that both implementations can be
compared on. Our fused residual ADD is part of its conv's kernel, so 1x1 convs and ADDs are compared
as one group as well as apart.

Per op: XNNPACK runs every pointwise conv on the same GEMM ukernel, so its symbols tell the op kind,
not the layer. Its runtime calls `xnn_run_operator_with_index` once per operator, in the order of the
delegated TFLite nodes; the counting plugin cuts the invoke there (one report per operator), and
the operators are matched to our kernels in model order by kind (GEMM, DENSE, DEPTHWISE, ADD, MEAN).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..board.guest import GUEST_PYTHON, Guest
from ..database import SHIPPED
from ..measure.cost import KERNEL_GUEST, Cost, entry_blocks
from ..measure.guest_maps import Symbolizer
from ..measure.mca import CPU_MODELS, BlockCostCache, CpuModel
from ..measure.plugin import Counts, merge_counts, parse_counts, run_counted
from ..model.build import BuiltModel, build_model
from ..model.demo import model_input
from ..model.quant_rewrite import AddSite, MeanSite, SoftmaxSite
from ..targets import AARCH64_A53, AARCH64_A72
from .litert import check_litert_installed, litert_argv, litert_env, litert_site_packages

GEMM, DENSE, DEPTHWISE, ADD, MEAN, OTHER, RUNTIME = (
    "1x1 CONV_2D, FULLY_CONNECTED", "KxK CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN",
    "other ops", "runtime (interpreter / VM, Python)")
GROUPS = (GEMM, DENSE, DEPTHWISE, ADD, MEAN, OTHER, RUNTIME)
LITERT_LIB = "libpywrap_litert_common.so"
XNNPACK_OPERATOR_ENTRY = "xnn_run_operator_with_index"  # called once per operator of an invoke
WARMUP, INVOKES = 3, 2  # the model is counted as LiteRT's per-layer runs are: after warm-up invokes

# XNNPACK's symbols by op group, first match wins: ukernels, and the per-op set-up they need.
_XNNPACK_GROUPS = (
    (re.compile(r"igemm|indirection"), DENSE),
    (re.compile(r"gemm|packw|pack_q"), GEMM),
    (re.compile(r"dwconv"), DEPTHWISE),
    (re.compile(r"vadd|vbinary"), ADD),
    (re.compile(r"gavgpool|rsum|rdsum|mean|reduce"), MEAN),
    (re.compile(r"^xnn_.*ukernel|softmax|vlut|rmax"), OTHER),
)


@dataclass
class Profile:
    """One invoke: its cost, and instructions and est. cycles by symbol and by op group."""

    cost: Cost
    by_symbol: dict[str, tuple[float, float]] = field(default_factory=dict)
    by_group: dict[str, tuple[float, float]] = field(default_factory=dict)

    def add(self, where: str, symbol: str, instructions: float, cycles: float, group_of) -> None:
        """Count code of `symbol` in file `where` under its symbol and its op group."""
        for table, key in ((self.by_symbol, symbol), (self.by_group, group_of(where, symbol))):
            i, c = table.get(key, (0.0, 0.0))
            table[key] = (i + instructions, c + cycles)


def profile(counts: Counts, maps: str, sysroot: Path, model: CpuModel, cache: BlockCostCache,
            group_of) -> Profile:
    """Cost of one marked region (mean over the regions), split by symbol and by `group_of(file, symbol)`."""
    from ..measure.cost import cost_of_regions

    cost = cost_of_regions(counts, model, cache)
    hot = [b for b in counts.block_list if b.execs_in_regions]
    chains = entry_blocks(hot)
    per = cache.costs(code for code, _, _ in chains)
    name = Symbolizer(maps, sysroot)
    n = len(counts.regions)
    result = Profile(cost)
    for code, execs, entry in chains:
        where, symbol = name(entry.addr)
        # A64: 4 bytes, 8 hex digits per instruction
        result.add(where, symbol, execs * len(code) / 8 / n, execs * per[code] / n, group_of)
    return result


def _site_group(site) -> str:
    if isinstance(site, AddSite):
        return ADD
    if isinstance(site, MeanSite):
        return MEAN
    if isinstance(site, SoftmaxSite):
        return OTHER
    if site.kind == "depthwise":
        return DEPTHWISE
    kh, kw = site.spec.weight_shape[1:3] if site.kind != "fc" else (1, 1)
    return GEMM if kh * kw == 1 else DENSE


def ours_groups(built: BuiltModel, library: Path):
    """Our library's symbols by op group: each kernel by the TFLite op it computes."""
    groups = {}
    for site in built.sites:
        groups[site.name] = _site_group(site)

    def group_of(where: str, symbol: str) -> str:
        if where == library.name:
            return groups.get(symbol, OTHER)  # no kernel of ours: an op on TVM's default path
        return RUNTIME

    return group_of


def xnnpack_group(where: str, symbol: str) -> str:
    if where == LITERT_LIB:
        for pattern, group in _XNNPACK_GROUPS:
            if pattern.search(symbol):
                return group
    return RUNTIME


def _ours_profile(built: BuiltModel, x: np.ndarray, model: CpuModel, cache: BlockCostCache, tmp: Path,
                  guest: Guest) -> Profile:
    library = built.export(tmp / "model.so")
    np.savez(tmp / "args.npz", x)
    argv = [str(guest.sysroot / GUEST_PYTHON), "-P", str(KERNEL_GUEST), str(library), "@vm:main",
            str(tmp / "args.npz"), "--warmup", str(WARMUP), "--calls", str(INVOKES), "--maps", str(tmp / "maps")]
    counts = run_counted(argv, cpu=model.name, sysroot=guest.prefix_for(model.name), env=guest.env(), cwd=tmp,
                         code_bytes=True, timeout=3600)
    return profile(counts, (tmp / "maps").read_text(), guest.sysroot, model, cache, ours_groups(built, library))


def symbol_offset(library: Path, name: str) -> int:
    """The address of function `name` in `library` relative to its load base."""
    nm = shutil.which("aarch64-linux-gnu-nm") or "nm"
    out = subprocess.run([nm, "--defined-only", str(library)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name and parts[1] in "tT":
            return int(parts[0], 16)
    raise RuntimeError(f"{library}: no function {name} in its symbol table (a stripped or other LiteRT build?)")


def _count_litert(path: Path, x_file: Path, model: CpuModel, tmp: Path, guest: Guest, *, xnnpack: bool,
                  threads: int = 1, per_thread: bool = False) -> tuple[list[Counts], str]:
    """Count LiteRT on the board with `model`'s CPU: one invoke with XNNPACK, cut into one report per
    XNNPACK operator (the first: the invoke up to its first operator; the last operator's includes the
    return of the invoke), or INVOKES without it, one report; `per_thread`: each block's counts per
    thread (plugin threads=on).
    Returns the reports and the guest's /proc/self/maps."""
    from ..measure.plugin import build_plugin

    check_litert_installed(guest)
    counts_file, maps = tmp / f"litert_t{threads}_counts.txt", tmp / f"litert_t{threads}_maps"
    split_at = None
    if xnnpack:
        offset = symbol_offset(litert_site_packages(guest) / "ai_edge_litert" / LITERT_LIB, XNNPACK_OPERATOR_ENTRY)
        split_at = f"{LITERT_LIB}:{offset:x}"
    plugin_args = [f"out={counts_file}", "blocks=region", "bytes=on", *(["threads=on"] if per_thread else [])]
    argv = litert_argv(path, warmup=WARMUP, invokes=1 if xnnpack else INVOKES, xnnpack=xnnpack, input=x_file,
                       maps=maps, plugin=build_plugin(), split_at=split_at, threads=threads,
                       plugin_args=plugin_args, guest=guest)
    # XNNPACK picks its ukernels from /proc/cpuinfo: the CPU of the estimate, in qemu and in the file.
    argv[argv.index("-cpu") + 1] = model.name
    argv[argv.index("-L") + 1] = str(guest.prefix_for(model.name))
    res = subprocess.run(argv, env=litert_env(guest), cwd="/", capture_output=True, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"LiteRT run failed (exit {res.returncode}):\n"
                           + res.stderr.decode(errors="replace")[-3000:])
    if not xnnpack:
        return [parse_counts(counts_file)], maps.read_text()
    parts = []
    while (part := Path(f"{counts_file}.{len(parts)}")).is_file():
        parts.append(parse_counts(part))
    if len(parts) < 2:
        raise RuntimeError(f"the LiteRT + XNNPACK run was not cut at {XNNPACK_OPERATOR_ENTRY} "
                           f"({len(parts)} reports): is the counting plugin current?")
    return parts, maps.read_text()


def _litert_profile(path: Path, x_file: Path, model: CpuModel, cache: BlockCostCache, tmp: Path, guest: Guest,
                    xnnpack: bool) -> tuple[Profile, list[Profile]]:
    """One invoke of LiteRT, and with XNNPACK one profile per XNNPACK operator."""
    parts, name_map = _count_litert(path, x_file, model, tmp, guest, xnnpack=xnnpack)
    if not xnnpack:
        return profile(parts[0], name_map, guest.sysroot, model, cache, xnnpack_group), []
    whole = profile(merge_counts(parts), name_map, guest.sysroot, model, cache, xnnpack_group)
    return whole, [profile(p, name_map, guest.sysroot, model, cache, xnnpack_group) for p in parts]


def operator_kind(p: Profile) -> str:
    """The op group an XNNPACK operator's cycles mostly went to (runtime code left out)."""
    groups = {g: c for g, (_, c) in p.by_group.items() if g != RUNTIME}
    return max(groups, key=groups.get) if groups else RUNTIME


def op_rows(built: BuiltModel, ours: Profile, operators: list[Profile]) -> list[dict]:
    """One row per kernel call of ours (a TFLite op, or a conv with its fused ADD) beside the XNNPACK
    operators that computed the same ops, matched in model order by kind; XNNPACK operators with no
    kernel of ours (RESHAPE, SOFTMAX, ...) get rows of their own. `operators[0]` is the invoke before
    XNNPACK's first operator."""
    calls: dict[str, int] = {}
    for site in built.sites:
        calls[site.name] = calls.get(site.name, 0) + 1
    rows = [{"ops": "invoke start", "kernel": "(LiteRT: the invoke up to XNNPACK's first operator)", "ours": None,
             "xnnpack": (operators[0].cost.instructions, operators[0].cost.cycles)}]
    pending = list(operators[1:])
    for site in built.sites:
        wanted = [_site_group(site)] + ([ADD] if getattr(site, "residual", None) is not None else [])
        mine, matched = [], []
        for kind in wanted:
            while pending and operator_kind(pending[0]) != kind and operator_kind(pending[0]) in (OTHER, RUNTIME):
                mine.append(pending.pop(0))
            if pending and operator_kind(pending[0]) == kind:
                matched.append(pending.pop(0))
        for p in mine:
            rows.append({"ops": "XNNPACK only", "kernel": max(p.by_symbol, key=lambda k: p.by_symbol[k][1]),
                         "ours": None, "xnnpack": (p.cost.instructions, p.cost.cycles)})
        insns, cycles = ours.by_symbol.get(site.name, (0.0, 0.0))
        n = calls[site.name]
        xnn = (sum(p.cost.instructions for p in matched), sum(p.cost.cycles for p in matched)) if matched else None
        rows.append({"ops": "+".join(site.tflite_ops), "kernel": site.name, "ours": (insns / n, cycles / n),
                     "xnnpack": xnn, "operators": [operator_kind(p) for p in matched],
                     "macs": getattr(getattr(site, "spec", None), "macs", 0)})
    for p in pending:
        rows.append({"ops": "XNNPACK only", "kernel": max(p.by_symbol, key=lambda k: p.by_symbol[k][1]),
                     "ours": None, "xnnpack": (p.cost.instructions, p.cost.cycles)})
    return rows


@dataclass
class ModelBench:
    model: str
    cpu: str
    macs: int
    kernels: int
    from_database: int
    profiles: dict[str, Profile]  # "ours", "xnnpack", "builtin"
    kernel_rows: list[dict] = field(default_factory=list)
    op_rows: list[dict] = field(default_factory=list)  # see `op_rows`

    def ratio(self, other: str) -> float:
        return self.profiles[other].cost.cycles / self.profiles["ours"].cost.cycles


def bench_model(path: Path | str, *, cpu: str = "cortex-a72", db_roots: tuple = (SHIPPED,),
                out_dir: Path = Path("bench_out"), builtin: bool = True, seed: int = 0) -> ModelBench:
    """Build `path` for the board with `cpu`, count one invoke of ours, LiteRT + XNNPACK and LiteRT
    builtin on the same input; print the tables and write model_table.txt, model_results.json and
    model_cycles.png to `out_dir`."""
    path = Path(path)
    model = CPU_MODELS[cpu]
    target = AARCH64_A53 if cpu == "cortex-a53" else AARCH64_A72
    guest = Guest.default()
    cache = BlockCostCache(model)
    built = build_model(path, target, db_roots)
    (info,) = built.model.inputs
    x = model_input(info.shape, info.dtype, seed)
    profiles = {}
    with tempfile.TemporaryDirectory(prefix="tir_armq_bench_model.") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "x.npy", x)
        print(f"[bench] {path.name}: counting ours ({WARMUP} + {INVOKES} invokes)", file=sys.stderr, flush=True)
        profiles["ours"] = _ours_profile(built, x, model, cache, tmp, guest)
        print("[bench] counting LiteRT + XNNPACK", file=sys.stderr, flush=True)
        profiles["xnnpack"], operators = _litert_profile(path, tmp / "x.npy", model, cache, tmp, guest, True)
        if builtin:
            print("[bench] counting LiteRT builtin", file=sys.stderr, flush=True)
            profiles["builtin"], _ = _litert_profile(path, tmp / "x.npy", model, cache, tmp, guest, False)
    sites = {}
    for site in built.sites:
        sites.setdefault(site.name, []).append(site)
    macs = sum(getattr(site.spec, "macs", 0) for site in built.sites if hasattr(site, "spec"))
    rows = []
    for k in built.kernel_records:
        insns, cycles = profiles["ours"].by_symbol.get(k.name, (0.0, 0.0))
        calls = len(sites.get(k.name, ())) or 1
        site = sites[k.name][0] if k.name in sites else None
        kmacs = site.spec.macs if site is not None and hasattr(site, "spec") else 0
        rows.append({"kernel": k.name, "variant": k.variant, "calls": calls, "record": k.source or "none",
                     "cycles": cycles, "instructions": insns, "cycles_per_call": cycles / calls,
                     "cycles_per_mac": cycles / calls / kmacs if kmacs else None,
                     "record_cycles": k.est_cycles})
    bench = ModelBench(path.name, cpu, macs, built.kernels, built.from_database, profiles, rows,
                       op_rows(built, profiles["ours"], operators))
    print(model_table(bench))
    for written in write_model_outputs(bench, out_dir):
        print(f"wrote {written}")
    return bench


def model_table(b: ModelBench) -> str:
    ours = b.profiles["ours"].cost
    lines = [f"{b.model}: one invoke, est. {b.cpu} cycles; {b.macs / 1e6:.1f} M MACs in our kernels; "
             f"{b.kernels} kernels of ours, {b.from_database} from tuning records",
             f"{'':<22}{'instructions':>14}{'est. cycles':>14}{'cycles/MAC':>12}{'cycles vs ours':>16}"]
    names = {"ours": "tir_armq", "xnnpack": "LiteRT + XNNPACK", "builtin": "LiteRT builtin"}
    for key, p in b.profiles.items():
        lines.append(f"{names[key]:<22}{p.cost.instructions:>14,.0f}{p.cost.cycles:>14,.0f}"
                     f"{p.cost.cycles / b.macs:>12.3f}{p.cost.cycles / ours.cycles:>15.2f}x")
    lines += ["", f"{'op group':<36}{'ours cycles':>13}{'XNNPACK':>13}{'XNN/ours':>10}"
                  f"{'ours insns':>13}{'XNN insns':>13}"]
    ours_g, xnn_g = b.profiles["ours"].by_group, b.profiles["xnnpack"].by_group
    pairs = [(g, ours_g.get(g, (0.0, 0.0)), xnn_g.get(g, (0.0, 0.0))) for g in GROUPS]
    merged = [(f"{GEMM} + ADD", *(tuple(map(sum, zip(ours_g.get(GEMM, (0, 0)), ours_g.get(ADD, (0, 0))))),
                                    tuple(map(sum, zip(xnn_g.get(GEMM, (0, 0)), xnn_g.get(ADD, (0, 0)))))))]
    for g, (oi, oc), (xi, xc) in pairs + merged:
        ratio = f"{xc / oc:>9.2f}x" if oc else f"{'-':>10}"
        lines.append(f"{g:<36}{oc:>13,.0f}{xc:>13,.0f}{ratio}{oi:>13,.0f}{xi:>13,.0f}")
    if b.op_rows:
        lines += ["", "per op (ours: per call of the kernel; XNNPACK: its operators for the same TFLite ops)",
                  f"{'#':>3} {'TFLite ops':<22}{'our kernel':<62}{'ours cycles':>12}{'XNNPACK':>12}{'XNN/ours':>9}"
                  f"{'ours c/MAC':>11}{'ours insns':>12}{'XNN insns':>12}"]
        for i, r in enumerate(b.op_rows):
            oi, oc = r["ours"] or (None, None)
            xi, xc = r["xnnpack"] or (None, None)
            ratio = f"{xc / oc:>8.2f}x" if oc and xc else f"{'-':>9}"
            per_mac = f"{oc / r['macs']:>11.3f}" if oc and r.get("macs") else f"{'-':>11}"
            fmt = lambda v: f"{v:>12,.0f}" if v is not None else f"{'-':>12}"  # noqa: E731
            lines.append(f"{i:>3} {r['ops']:<22}{r['kernel'][:61]:<62}"
                         f"{fmt(oc)}{fmt(xc)}{ratio}{per_mac}{fmt(oi)}{fmt(xi)}")
    lines += ["", f"{'our kernel':<66}{'calls':>6}{'record':>9}{'cycles/call':>13}{'cycles/MAC':>11}"]
    for r in sorted(b.kernel_rows, key=lambda r: -r["cycles"]):
        per_mac = f"{r['cycles_per_mac']:>11.3f}" if r["cycles_per_mac"] else f"{'-':>11}"
        lines.append(f"{r['kernel']:<66}{r['calls']:>6}{r['record']:>9}{r['cycles_per_call']:>13,.0f}{per_mac}")
    return "\n".join(lines)


def write_model_outputs(b: ModelBench, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(b.model).stem
    table, results, plot = (out_dir / f"{stem}_table.txt", out_dir / f"{stem}_results.json",
                            out_dir / f"{stem}_cycles.png")
    table.write_text(model_table(b) + "\n")
    results.write_text(json.dumps({
        "model": b.model, "cpu": b.cpu, "macs": b.macs, "kernels": b.kernels, "from_database": b.from_database,
        "totals": {k: asdict(p.cost) for k, p in b.profiles.items()},
        "groups": {k: p.by_group for k, p in b.profiles.items()},
        "kernel_rows": b.kernel_rows, "op_rows": b.op_rows}, indent=1) + "\n")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    xs = np.arange(len(GROUPS))
    for i, (key, label) in enumerate((("ours", "tir_armq"), ("xnnpack", "LiteRT + XNNPACK"))):
        ys = [b.profiles[key].by_group.get(g, (0, 0))[1] / 1e6 for g in GROUPS]
        ax.bar(xs + (i - 0.5) * 0.38, ys, 0.38, label=label)
    ax.set_xticks(xs, [g.replace(", ", ",\n").replace(" (", "\n(") for g in GROUPS], fontsize=7)
    ax.set_ylabel(f"est. {b.cpu} M cycles per invoke")
    ax.set_title(f"{b.model}: ours {b.profiles['ours'].cost.cycles / 1e6:.1f} M, XNNPACK "
                 f"{b.profiles['xnnpack'].cost.cycles / 1e6:.1f} M cycles ({b.ratio('xnnpack'):.2f}x)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=120)
    plt.close(fig)
    return [table, results, plot]


def litert_threaded_cost(path: Path, x_file: Path, model: CpuModel, threads: int, tmp: Path, guest: Guest,
                         cache: BlockCostCache | None = None):
    """One invoke of LiteRT + XNNPACK with `num_threads=threads`, costed as our multi-thread builds
    are (`tir_armq.measure.threads`), one segment per XNNPACK operator (by function): the launching
    thread's own code plus the operator's tiles spread evenly over the threads (pthreadpool deals
    them out as threads ask, so the split itself depends on host timing)."""
    from ..measure.threads import threaded_cost

    parts, maps = _count_litert(path, x_file, model, tmp, guest, xnnpack=True, threads=threads,
                                per_thread=True)
    return threaded_cost(parts, maps, guest.sysroot, None, model, threads, calls=1, cache=cache,
                         by_symbol=True)


def threaded_profile(instructions: float, cycles: float, cpu: str, by_symbol: dict, group_of) -> Profile:
    """A `Profile` of latencies: `by_symbol` maps (file, function) to (instructions, latency cycles)."""
    result = Profile(Cost(instructions, cycles, cpu))
    for (where, symbol), (insns, cyc) in by_symbol.items():
        result.add(where, symbol, insns, cyc, group_of)
    return result


@dataclass
class ThreadsBench:
    """Whole-model latency estimates on 1 and `threads` threads: ours and LiteRT + XNNPACK, in total
    and per op."""

    model: str
    cpu: str
    threads: int
    rows: list[dict]  # {"threads", "engine", "instructions", "cycles", "kernels_from_db"}
    op_rows: dict[int, list[dict]] = field(default_factory=dict)  # threads -> `op_rows` of that build

    def cycles(self, engine: str, threads: int) -> float:
        return next(r["cycles"] for r in self.rows if r["engine"] == engine and r["threads"] == threads)


def bench_model_threads(path: Path | str, threads: int, *, cpu: str = "cortex-a72",
                        db_roots: tuple = (SHIPPED,), out_dir: Path = Path("bench_out"),
                        seed: int = 0) -> ThreadsBench:
    """`bench --model --threads N`: the model built for 1 and for N threads, and LiteRT + XNNPACK with
    num_threads 1 and N, one invoke each, costed by the same multi-thread method
    (`tir_armq.measure.threads`), in total and per op; prints the tables and writes
    <model>_threads.json and <model>_threads_table.txt to `out_dir`."""
    from ..measure.threads import measure_threaded

    path = Path(path)
    model = CPU_MODELS[cpu]
    board = AARCH64_A53 if cpu == "cortex-a53" else AARCH64_A72
    guest = Guest.default()
    cache = BlockCostCache(model)
    rows, per_op = [], {}
    with tempfile.TemporaryDirectory(prefix="tir_armq_bench_threads.") as tmp:
        tmp = Path(tmp)
        for t in sorted({1, threads}):
            built = build_model(path, board.with_threads(t), db_roots)
            (info,) = built.model.inputs
            x = model_input(info.shape, info.dtype, seed)
            np.save(tmp / "x.npy", x)
            print(f"[bench] {path.name}: counting ours on {t} thread(s)", file=sys.stderr, flush=True)
            library = built.export(tmp / f"model_t{t}.so")
            ours = measure_threaded(library, "@vm:main", [x], threads=t, model=model, warmup=WARMUP, calls=1,
                                    timeout=3600, cache=cache, by_symbol=True)
            rows.append({"threads": t, "engine": "ours", "instructions": ours.instructions,
                         "cycles": ours.cycles, "kernels_from_db": f"{built.from_database}/{built.kernels}"})
            print(f"[bench] counting LiteRT + XNNPACK on {t} thread(s)", file=sys.stderr, flush=True)
            xnn = litert_threaded_cost(path, tmp / "x.npy", model, t, tmp, guest, cache)
            rows.append({"threads": t, "engine": "xnnpack", "instructions": xnn.instructions,
                         "cycles": xnn.cycles, "kernels_from_db": ""})
            operators = [threaded_profile(s.instructions, s.cycles, model.name, s.by_symbol, xnnpack_group)
                         for s in xnn.segments]
            mine = threaded_profile(ours.instructions, ours.cycles, model.name, ours.by_symbol(),
                                    ours_groups(built, library))
            per_op[t] = op_rows(built, mine, operators)
    bench = ThreadsBench(path.name, cpu, threads, rows, per_op)
    table = threads_table(bench)
    print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    out, text = out_dir / f"{path.stem}_threads.json", out_dir / f"{path.stem}_threads_table.txt"
    out.write_text(json.dumps(asdict(bench), indent=1) + "\n")
    text.write_text(table + "\n")
    print(f"wrote {out}\nwrote {text}")
    return bench


def threads_table(b: ThreadsBench) -> str:
    lines = [f"{b.model}, {b.cpu} estimate, one invoke: latency on 1 and {b.threads} threads",
             f"{'threads':>7}  {'engine':<8} {'instructions':>14} {'est. cycles':>14}  {'xnnpack/ours':>12}"
             "  records"]
    for r in b.rows:
        ratio = f"{b.cycles('xnnpack', r['threads']) / r['cycles']:.2f}x" if r["engine"] == "ours" else ""
        lines.append(f"{r['threads']:>7}  {r['engine']:<8} {r['instructions']:>14,.0f} {r['cycles']:>14,.0f}  "
                     f"{ratio:>12}  {r['kernels_from_db']}")
    if b.threads > 1:
        ours, xnn = (b.cycles(e, 1) / b.cycles(e, b.threads) for e in ("ours", "xnnpack"))
        lines.append(f"speed-up 1 -> {b.threads} threads: ours {ours:.2f}x, XNNPACK {xnn:.2f}x")
    if b.threads > 1 and {1, b.threads} <= set(b.op_rows):
        lines += _threads_op_lines(b.op_rows[1], b.op_rows[b.threads], b.threads)
    return "\n".join(lines)


def _threads_op_lines(one: list[dict], many: list[dict], threads: int) -> list[str]:
    """Per op latency on 1 and `threads` threads (ours per call of the kernel, XNNPACK its operators)."""
    t = threads
    lines = ["", "per op, est. cycles of latency (ours: per call of the kernel; XNNPACK: its operators)",
             f"{'#':>3} {'TFLite ops':<22}{'our kernel':<58}{'ours 1t':>11}{f'ours {t}t':>11}{'speed-up':>9}"
             f"{'XNN 1t':>11}{f'XNN {t}t':>11}{'speed-up':>9}{f'XNN/ours {t}t':>14}"]
    if [r["kernel"] for r in one] != [r["kernel"] for r in many]:
        return lines[:1] + ["(the 1- and multi-thread runs' ops do not line up: no per-op table)"]

    def cyc(r: dict, engine: str) -> float | None:
        return r[engine][1] if r[engine] else None

    def fmt(v: float | None, width: int = 11) -> str:
        return f"{v:>{width},.0f}" if v is not None else f"{'-':>{width}}"

    def ratio(a: float | None, b: float | None, width: int) -> str:
        return f"{a / b:>{width - 1}.2f}x" if a and b else f"{'-':>{width}}"

    for i, (r1, rt) in enumerate(zip(one, many)):
        o1, ot, x1, xt = cyc(r1, "ours"), cyc(rt, "ours"), cyc(r1, "xnnpack"), cyc(rt, "xnnpack")
        lines.append(f"{i:>3} {r1['ops']:<22}{r1['kernel'][:57]:<58}{fmt(o1)}{fmt(ot)}{ratio(o1, ot, 9)}"
                     f"{fmt(x1)}{fmt(xt)}{ratio(x1, xt, 9)}{ratio(xt, ot, 14)}")
    return lines
