"""`tir-armq bench --model`: a whole model as `tir-armq build` makes it, one invoke, against LiteRT +
XNNPACK and LiteRT's builtin kernels, all three counted by the same plugin in the same guest, and
where each one's cycles go.

Every executed block is named by the symbol it lies in (the guest's /proc/self/maps and the ELF
symbol tables: our library keeps each kernel under its kernel name, LiteRT's keeps XNNPACK's ukernels
and tflite::), and symbols are gathered into groups of TFLite ops that both implementations can be
compared on. Per op would need the delegate's node boundaries: XNNPACK runs every pointwise conv on
the same GEMM ukernel, so its symbols tell the op kind, not the layer. Our fused residual ADD is
part of its conv's kernel, so 1x1 convs and ADDs are compared as one group as well as apart.
"""

from __future__ import annotations

import bisect
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
from ..measure.mca import CPU_MODELS, BlockCostCache, CpuModel
from ..measure.plugin import Counts, run_counted
from ..model.build import BuiltModel, build_model
from ..model.demo import model_input
from ..model.quant_rewrite import AddSite, MeanSite
from ..targets import AARCH64_A53, AARCH64_A72
from .litert import litert_argv, litert_env, check_litert_installed

GEMM, DENSE, DEPTHWISE, ADD, MEAN, OTHER, RUNTIME = (
    "1x1 CONV_2D, FULLY_CONNECTED", "KxK CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN",
    "other ops", "runtime (interpreter / VM, Python)")
GROUPS = (GEMM, DENSE, DEPTHWISE, ADD, MEAN, OTHER, RUNTIME)
LITERT_LIB = "libpywrap_litert_common.so"
WARMUP, INVOKES = 3, 2  # the model is counted as LiteRT's per-layer runs are: after warm-up invokes

_TVM_SYMBOL = re.compile(r"^(?:__tvm_ffi_)?(.+?)(?:_compute_)?$")
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


class Symbolizer:
    """Names guest code addresses: the mapped file from /proc/self/maps, then its ELF symbol table."""

    def __init__(self, maps: str, sysroot: Path) -> None:
        self.sysroot = sysroot
        self._maps = []  # (start, end, load base, path)
        bases: dict[str, int] = {}
        for line in maps.splitlines():
            parts = line.split()
            if len(parts) < 6 or not parts[5].startswith("/"):
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            offset, path = int(parts[2], 16), parts[5]
            bases.setdefault(path, start - offset)  # the first mapping of a file holds its ELF header
            self._maps.append((start, end, bases[path], path))
        self._symbols: dict[str, tuple[list[int], list[str]]] = {}

    def _table(self, path: str) -> tuple[list[int], list[str]]:
        if path not in self._symbols:
            host = Path(path) if Path(path).exists() else self.sysroot / path.lstrip("/")
            nm = shutil.which("aarch64-linux-gnu-nm") or "nm"
            out = subprocess.run([nm, "--defined-only", "-n", "-C", str(host)], capture_output=True, text=True)
            rows = []
            for line in out.stdout.splitlines():
                parts = line.split(" ", 2)
                if len(parts) == 3 and parts[1] in "tTwW" and not parts[2].startswith("$"):
                    rows.append((int(parts[0], 16), parts[2]))
            self._symbols[path] = ([a for a, _ in rows], [n for _, n in rows])
        return self._symbols[path]

    def __call__(self, addr: int) -> tuple[str, str]:
        """(file name, symbol) of a guest address; the symbol is "?" where the file has none. TVM's
        `<name>_compute_` and `__tvm_ffi_<name>` are both named `<name>`: the kernel's global symbol."""
        for start, end, base, path in self._maps:
            if start <= addr < end:
                addrs, names = self._table(path)
                i = bisect.bisect_right(addrs, addr - base) - 1
                symbol = names[i] if i >= 0 else "?"
                return Path(path).name, _TVM_SYMBOL.sub(r"\1", symbol)
        return "?", "?"


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
        insns, cycles = execs * len(code) / 8 / n, execs * per[code] / n  # A64: 4 bytes, 8 hex digits
        for table, key in ((result.by_symbol, symbol), (result.by_group, group_of(where, symbol))):
            i, c = table.get(key, (0.0, 0.0))
            table[key] = (i + insns, c + cycles)
    return result


def _site_group(site) -> str:
    if isinstance(site, AddSite):
        return ADD
    if isinstance(site, MeanSite):
        return MEAN
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


def _litert_profile(path: Path, x_file: Path, model: CpuModel, cache: BlockCostCache, tmp: Path, guest: Guest,
                    xnnpack: bool) -> Profile:
    from ..measure.plugin import build_plugin, parse_counts

    check_litert_installed(guest)
    counts_file, maps = tmp / "litert_counts.txt", tmp / "litert_maps"
    argv = litert_argv(path, warmup=WARMUP, invokes=INVOKES, xnnpack=xnnpack, input=x_file, maps=maps,
                       plugin=build_plugin(), plugin_args=[f"out={counts_file}", "blocks=region", "bytes=on"],
                       guest=guest)
    # XNNPACK picks its ukernels from /proc/cpuinfo: the CPU of the estimate, in qemu and in the file.
    argv[argv.index("-cpu") + 1] = model.name
    argv[argv.index("-L") + 1] = str(guest.prefix_for(model.name))
    res = subprocess.run(argv, env=litert_env(guest), cwd="/", capture_output=True, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"LiteRT run failed (exit {res.returncode}):\n" + res.stderr.decode(errors="replace")[-3000:])
    return profile(parse_counts(counts_file), maps.read_text(), guest.sysroot, model, cache, xnnpack_group)


@dataclass
class ModelBench:
    model: str
    cpu: str
    macs: int
    kernels: int
    from_database: int
    profiles: dict[str, Profile]  # "ours", "xnnpack", "builtin"
    kernel_rows: list[dict] = field(default_factory=list)

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
        profiles["xnnpack"] = _litert_profile(path, tmp / "x.npy", model, cache, tmp, guest, True)
        if builtin:
            print("[bench] counting LiteRT builtin", file=sys.stderr, flush=True)
            profiles["builtin"] = _litert_profile(path, tmp / "x.npy", model, cache, tmp, guest, False)
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
    bench = ModelBench(path.name, cpu, macs, built.kernels, built.from_database, profiles, rows)
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
        "kernel_rows": b.kernel_rows}, indent=1) + "\n")
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
