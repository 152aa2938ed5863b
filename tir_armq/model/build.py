"""Build an imported, rewritten model: our kernels scheduled from the target's tuning database
(MetaSchedule's `MetaScheduleApplyDatabase`), or by their variant's fixed schedule where it has no
record; everything else compiled by TVM's default Relax pipeline."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tvm
from tvm import relax, tirx
from tvm.s_tir import meta_schedule as ms

from ..build import host_target
from ..database import DatabaseError, TargetDatabase
from ..kernels import fixed_schedule, variant_of
from ..targets import ArmTarget
from .quant_rewrite import ConvSite, rewrite_quantized_convs
from .tflite_import import ImportedModel, load_tflite


@dataclass
class BuiltModel:
    executable: tvm.runtime.Executable
    model: ImportedModel
    sites: list[ConvSite]
    target: ArmTarget | None
    kernels: int = 0  # distinct PrimFuncs of ours in the library
    from_database: int = 0  # of which scheduled from tuning records
    skipped: list[str] = field(default_factory=list)
    build_seconds: float = 0.0

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
            "inputs": [vars(i) | {"shape": list(i.shape)} for i in self.model.inputs],
            "outputs": [vars(o) | {"shape": list(o.shape)} for o in self.model.outputs],
            "kernels": self.kernels,
            "from_database": self.from_database,
        }
        sidecar(path).write_text(json.dumps(meta, indent=1) + "\n")
        return path

    @property
    def layers(self) -> int:
        """TFLite operators computed by our kernels (a conv with its fused residual ADD is two)."""
        return sum(len(site.tflite_ops) for site in self.sites)

    def report(self) -> str:
        """The one-line summary the CLI prints."""
        return (f"{self.model.path.name}: {self.layers} layers on tir_armq kernels "
                f"({self.kernels} distinct, {self.from_database} from the tuning database, "
                f"{self.kernels - self.from_database} fixed schedules); other ops on TVM's default path; "
                f"built in {self.build_seconds:.1f} s")


def sidecar(library: Path | str) -> Path:
    """The model description written next to an exported library."""
    return Path(f"{library}.json")


def _ours(func) -> bool:
    return isinstance(func, tirx.PrimFunc) and variant_of(func) is not None


def _target_records(db: TargetDatabase, mod: tvm.IRModule) -> ms.database.Database:
    """A MemoryDatabase with the best record of this target for each of our kernels in `mod`:
    what MetaScheduleApplyDatabase then applies (it looks records up by workload alone, so the
    target filter happens here)."""
    memory = ms.database.MemoryDatabase()
    for _, func in mod.functions.items():
        if not _ours(func):
            continue
        # The kernel as tuned: its global symbol is its kernel name, here and in `tir-armq tune`.
        records = db.records(func, limit=1)
        if records:
            best = records[0]
            workload = memory.commit_workload(ms.tune_context._normalize_mod(func))
            memory.commit_tuning_record(ms.database.TuningRecord(
                best.trace, workload, best.run_secs, best.target, best.args_info))
    return memory


def schedule_kernels(mod: tvm.IRModule, target: ArmTarget | None,
                     db: TargetDatabase | None) -> tuple[tvm.IRModule, int, int]:
    """Our PrimFuncs scheduled: from `db` through MetaScheduleApplyDatabase, the rest by their
    variant's fixed schedule. Returns the module, the number of our kernels, and how many came from the database."""
    tvm_target = target.tvm_target() if target is not None else host_target()
    kernels = sum(1 for _, f in mod.functions.items() if _ours(f))
    from_db = 0
    if db is not None:
        memory = _target_records(db, mod)
        from_db = len(memory.get_all_tuning_records())
        if from_db:
            with tvm_target, memory, tvm.transform.PassContext(opt_level=3):
                mod = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(mod)
    for gvar, func in list(mod.functions.items()):
        if _ours(func) and not func.attrs.get("tirx.is_scheduled", False):
            scheduled = fixed_schedule(func, tvm_target).mod["main"]
            mod[gvar] = scheduled.with_attr("tirx.is_scheduled", True)
    return mod, kernels, from_db


def build_model(path: Path | str, target: ArmTarget | None = None, db_root: Path | str | None = None,
                progress=sys.stderr) -> BuiltModel:
    """Import, rewrite, schedule and compile a quantized .tflite model for `target` (None: the host).
    `db_root`: a tuning database root (one folder per target); a missing folder for the target
    means fixed schedules, a corrupt one is an error."""
    start = time.monotonic()
    model = load_tflite(path)
    mod, sites, skipped = rewrite_quantized_convs(model.mod)
    db = None
    if db_root is not None and target is not None:
        try:
            db = TargetDatabase(db_root, target)
        except DatabaseError as err:
            if "no tuning database" not in str(err):
                raise
            print(f"[build] {err}: fixed schedules", file=progress)
    mod, kernels, from_db = schedule_kernels(mod, target, db)
    tvm_target = target.tvm_target() if target is not None else host_target()
    executable = tvm.compile(mod, target=tvm_target)
    built = BuiltModel(executable, model, sites, target, kernels, from_db, skipped, time.monotonic() - start)
    print(f"[build] {built.report()}", file=progress)
    return built
