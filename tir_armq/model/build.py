"""Build an imported, rewritten model: our kernels scheduled from tuning records (MetaSchedule's
`MetaScheduleApplyDatabase`; a user's database on top of the shipped one), or by their variant's fixed
schedule where no database has a record; everything else compiled by TVM's default Relax pipeline."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tvm
from tvm import relax, tirx
from tvm.s_tir import meta_schedule as ms

from ..build import host_target
from ..database import SHIPPED, LayeredDatabase, build_databases, source_name
from ..kernels import fixed_schedule, variant_of
from ..targets import ArmTarget
from .quant_rewrite import ConvSite, rewrite_quantized_convs
from .tflite_import import ImportedModel, load_tflite


@dataclass(frozen=True)
class KernelRecord:
    """How one of our kernels in a build was scheduled: from which database's record, if any."""

    name: str  # the kernel name (global symbol)
    variant: str  # its entry in the kernel table
    layers: tuple[str, ...]  # the model's tensors it computes (TFLite output tensor names)
    source: str | None  # the database its record came from (`shipped` or a folder), None: fixed schedule
    est_cycles: float | None  # the record's measured time at the target's nominal clock
    record_threads: int | None = None  # a record of another thread count, rebuilt (`kernels.retarget`)


@dataclass
class BuiltModel:
    executable: tvm.runtime.Executable
    model: ImportedModel
    sites: list[ConvSite]
    target: ArmTarget | None
    kernel_records: list[KernelRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    build_seconds: float = 0.0

    @property
    def kernels(self) -> int:
        """Distinct PrimFuncs of ours in the library."""
        return len(self.kernel_records)

    @property
    def from_database(self) -> int:
        """Of `kernels`, those scheduled from a tuning record."""
        return sum(1 for k in self.kernel_records if k.source is not None)

    @property
    def retargeted(self) -> int:
        """Of `from_database`, those from a record of another thread count."""
        return sum(1 for k in self.kernel_records if k.record_threads is not None)

    def export(self, path: Path | str) -> Path:
        """The library for the board (cross-compiled for the target), plus `<path>.json` with the
        model's input and output description that `run_model` checks inputs against."""
        import json

        from tvm.support import cc

        if self.target is None:
            raise ValueError("export: this model was built for the host; build it for a board target")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.executable.export_library(str(path), fcompile=cc.cross_compiler(self.target.cross_cc))
        meta = {
            "model": self.model.path.name,
            "target": self.target.name,
            "threads": self.target.threads,
            "inputs": [vars(i) | {"shape": list(i.shape)} for i in self.model.inputs],
            "outputs": [vars(o) | {"shape": list(o.shape)} for o in self.model.outputs],
            "kernels": [vars(k) | {"layers": list(k.layers)} for k in self.kernel_records],
        }
        sidecar(path).write_text(json.dumps(meta, indent=1) + "\n")
        return path

    @property
    def layers(self) -> int:
        """TFLite operators computed by our kernels (a conv with its fused residual ADD is two)."""
        return sum(len(site.tflite_ops) for site in self.sites)

    def kernel_table(self) -> str:
        """One line per kernel: the layers it computes, its variant, its record and est. cycles."""
        rows = [("kernel", "variant", "record", "est. cycles", "layers")]
        for k in self.kernel_records:
            cycles = f"{k.est_cycles:,.0f}" if k.est_cycles is not None else "-"
            layers = ", ".join(k.layers[:2]) + (f" (+{len(k.layers) - 2})" if len(k.layers) > 2 else "")
            record = "none" if not k.source else f"exact ({k.source})" if k.record_threads is None else \
                f"{k.record_threads}-thread ({k.source})"
            rows.append((k.name, k.variant, record, cycles, layers))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(f"{c:<{w}}" if i != 3 else f"{c:>{w}}" for i, (c, w) in
                                   enumerate(zip(r[:4], widths))) + "  " + r[4] for r in rows)

    @property
    def default_path_ops(self) -> dict[str, int]:
        """The model's TFLite operators (by name, with their counts) left on TVM's default path."""
        left = dict(self.model.op_counts)
        for site in self.sites:
            for op in site.tflite_ops:
                left[op] = left.get(op, 0) - 1
        return {op: n for op, n in sorted(left.items()) if n > 0}

    def report(self) -> str:
        """The one-line summary the CLI prints."""
        other = f" ({self.retargeted} rebuilt from records of other thread counts)" if self.retargeted else ""
        left = self.default_path_ops
        rest = "other ops on TVM's default path: " + ", ".join(f"{op} x{n}" for op, n in left.items()) \
            if left else "no op left on TVM's default path"
        return (f"{self.model.path.name}: {self.layers} layers on tir_armq kernels "
                f"({self.kernels} distinct, {self.from_database} from the tuning database{other}, "
                f"{self.kernels - self.from_database} fixed schedules); {rest}; "
                f"built in {self.build_seconds:.1f} s")


def sidecar(library: Path | str) -> Path:
    """The model description written next to an exported library."""
    return Path(f"{library}.json")


def _ours(func) -> bool:
    return isinstance(func, tirx.PrimFunc) and variant_of(func) is not None


def _best_records(dbs: LayeredDatabase, mod: tvm.IRModule
                  ) -> tuple[ms.database.Database, dict[str, tuple[str, float]]]:
    """A MemoryDatabase with the best record of each of our kernels in `mod` that `dbs` has: what
    MetaScheduleApplyDatabase then applies (it looks records up by workload alone, so the target
    filter happens here). Also, by kernel name, the database it came from and its measured seconds."""
    memory = ms.database.MemoryDatabase()
    found = {}
    for _, func in mod.functions.items():
        db = dbs.layer_of(func) if _ours(func) else None
        if db is None:
            continue
        # The kernel as tuned: its global symbol is its kernel name, here and in `tir-armq tune`.
        (best,) = db.records(func, limit=1)
        workload = memory.commit_workload(ms.tune_context._normalize_mod(func))
        memory.commit_tuning_record(ms.database.TuningRecord(
            best.trace, workload, best.run_secs, best.target, best.args_info))
        seconds = sum(float(t) for t in best.run_secs) / len(best.run_secs)
        found[str(func.attrs["global_symbol"])] = (source_name(db), seconds)
    return memory, found


def _retargeted(func: tirx.PrimFunc, dbs: LayeredDatabase, tuned_for: ArmTarget, target: ArmTarget):
    """`func` for `target` from the best record `dbs` (of `tuned_for`, another thread count) has,
    rebuilt with `target`'s parallel loops; None without a record that rebuilds."""
    from ..kernels.retarget import retarget

    db = dbs.layer_of(func)
    if db is None:
        return None, None
    (best,) = db.records(func, limit=1)
    sch = retarget(func, best, tuned_for.tvm_target(), target.tvm_target())
    return sch, source_name(db)


def schedule_kernels(mod: tvm.IRModule, target: ArmTarget | None, dbs: LayeredDatabase | None,
                     other_threads: tuple[ArmTarget, LayeredDatabase] | None = None
                     ) -> tuple[tvm.IRModule, dict[str, tuple]]:
    """Our PrimFuncs scheduled: from the first of `dbs` with a record, through
    MetaScheduleApplyDatabase; then, from `other_threads` (the databases of the target on another
    thread count), records rebuilt for the target's threads (`kernels.retarget`); the rest by their
    variant's fixed schedule. Returns the module and, for each kernel scheduled from a record,
    (database name, measured seconds or None, the record's thread count where it is another)."""
    tvm_target = target.tvm_target() if target is not None else host_target()
    found: dict[str, tuple] = {}
    if dbs is not None:
        memory, found = _best_records(dbs, mod)
        found = {name: (source, seconds, None) for name, (source, seconds) in found.items()}
        if found:
            with tvm_target, memory, tvm.transform.PassContext(opt_level=3):
                mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
    for gvar, func in list(mod.functions.items()):
        if _ours(func) and not func.attrs.get("tirx.is_scheduled", False):
            sch = None
            if other_threads is not None:
                tuned_for, other = other_threads
                sch, source = _retargeted(func, other, tuned_for, target)
                if sch is not None:
                    found[str(func.attrs["global_symbol"])] = (source, None, tuned_for.threads)
            if sch is None:
                sch = fixed_schedule(func, tvm_target)
            mod[gvar] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
    return mod, found


def _kernel_records(mod: tvm.IRModule, emitted: list[tuple[str, object]], found: dict[str, tuple],
                    target: ArmTarget | None) -> list[KernelRecord]:
    from ..measure.armv7_cost import NOMINAL_HZ_A7
    from ..measure.cost import NOMINAL_HZ

    hz = NOMINAL_HZ_A7 if target is not None and target.isa == "armv7" else NOMINAL_HZ
    layers: dict[str, list[str]] = {}
    for var_name, site in emitted:
        layers.setdefault(site.name, []).append(var_name)
    rows = []
    for _, func in mod.functions.items():
        if _ours(func):
            name = str(func.attrs["global_symbol"])
            source, seconds, threads = found.get(name, (None, None, None))
            rows.append(KernelRecord(name, variant_of(func).name, tuple(layers.get(name, ())), source,
                                     None if seconds is None else seconds * hz, threads))
    order = {name: i for i, name in enumerate(layers)}  # first use in the model
    return sorted(rows, key=lambda k: order.get(k.name, len(order)))


def build_model(path: Path | str, target: ArmTarget | None = None,
                db_roots: tuple[Path | str, ...] | list[Path | str] = (SHIPPED,),
                progress=sys.stderr) -> BuiltModel:
    """Import, rewrite, schedule and compile a quantized .tflite model for `target` (None: the host).
    `db_roots`: tuning databases (one folder per target) in order of precedence, `SHIPPED` for the
    package's own records; `()` builds every kernel with its fixed schedule. A database without a
    folder for the target is passed over; a corrupt one is an error."""
    start = time.monotonic()
    model = load_tflite(path)
    mod, sites, skipped, emitted = rewrite_quantized_convs(model.mod, with_layers=True)
    dbs = build_databases(target, db_roots, progress) if target is not None else None
    other_threads = None
    if target is not None and target.threads > 1:
        # Kernels without a record for this thread count take their one-thread record's decisions.
        one = target.with_threads(1)
        other_threads = (one, build_databases(one, db_roots))
    mod, found = schedule_kernels(mod, target, dbs, other_threads)
    records = _kernel_records(mod, emitted, found, target)
    tvm_target = target.tvm_target() if target is not None else host_target()
    executable = tvm.compile(mod, target=tvm_target)
    built = BuiltModel(executable, model, sites, target, records, skipped, time.monotonic() - start)
    print(f"[build] {built.report()}", file=progress)
    return built
