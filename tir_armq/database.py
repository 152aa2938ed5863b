"""Tuning records of one target: a MetaSchedule JSON database that never serves another target.

Layout: `<root>/<target name>/` holds `target.json` (which target the records are for) and
MetaSchedule's `database_workload.json` / `database_tuning_record.json`. Upstream TVM looks records
up by workload alone, so an A72 schedule would be applied on an A7; here the folder is bound to its
target when created, opening it for another target is refused, and a record whose own target
differs (a foreign record copied in) is never returned.

Files are only ever appended to by MetaSchedule; a corrupt or truncated file is reported with its
name and line and left exactly as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import tvm
from tvm import s_tir, tirx
from tvm.s_tir import meta_schedule as ms

from .intrinsics import for_isa
from .targets import ArmTarget

TARGET_FILE = "target.json"
WORKLOADS_FILE = "database_workload.json"
RECORDS_FILE = "database_tuning_record.json"
FORMAT = 1


class DatabaseError(RuntimeError):
    """A database folder that cannot be used: corrupt, truncated, or for another target."""


def _target_key(target: tvm.target.Target) -> str:
    return str(target)


def _check_json_lines(path: Path) -> int:
    """Validate a MetaSchedule JSON-lines file without touching it; the number of records."""
    count = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise DatabaseError(f"{path}: line {lineno} is not valid JSON ({err}); the file is corrupt or "
                                    "truncated and was left untouched") from None
            if not isinstance(value, list):
                raise DatabaseError(f"{path}: line {lineno} is not a MetaSchedule record")
            count += 1
    return count


class TargetDatabase:
    """The records of `target` under `root`; `create=True` makes the folder if it does not exist."""

    def __init__(self, root: Path | str, target: ArmTarget, *, create: bool = False) -> None:
        self.target = target
        self.tvm_target = target.tvm_target()
        self.path = Path(root) / target.name
        meta = self.path / TARGET_FILE
        if not meta.exists():
            if not create:
                raise DatabaseError(f"{self.path}: no tuning database for target {target.name!r}")
            self.path.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"format": FORMAT, "name": target.name,
                                        "target": _target_key(self.tvm_target)}, indent=1) + "\n")
        self._check_meta(meta)
        for name in (WORKLOADS_FILE, RECORDS_FILE):
            if (self.path / name).exists():
                _check_json_lines(self.path / name)
        # Traces name our intrinsics: register them before MetaSchedule parses a record.
        for_isa(target.isa)
        try:
            self.db = ms.database.JSONDatabase(work_dir=str(self.path), allow_missing=True)
        except Exception as err:  # noqa: BLE001 - TVM raises several error types for bad contents
            raise DatabaseError(f"{self.path}: MetaSchedule could not read the database: {err}") from None

    def _check_meta(self, meta: Path) -> None:
        try:
            info = json.loads(meta.read_text())
            name, key = info["name"], info["target"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise DatabaseError(f"{meta}: unreadable target description ({err}); left untouched") from None
        if name != self.target.name or key != _target_key(self.tvm_target):
            raise DatabaseError(
                f"{self.path}: records tuned for target {name!r} ({key}), refused for {self.target.name!r} "
                f"({_target_key(self.tvm_target)})"
            )

    def records(self, func: tirx.PrimFunc) -> list[ms.database.TuningRecord]:
        """Records of this workload for this target, best first."""
        mod = ms.tune_context._normalize_mod(func)
        if not self.db.has_workload(mod):
            return []
        workload = self.db.commit_workload(mod)  # existing: returns it without writing
        key = _target_key(self.tvm_target)
        best = self.db.get_top_k(workload, 1 << 20)
        return [r for r in best if r.target is not None and _target_key(r.target) == key]

    def best_schedule(self, func: tirx.PrimFunc) -> s_tir.Schedule | None:
        """The best record replayed on `func`, or None when this target has none for it."""
        records = self.records(func)
        if not records:
            return None
        # A deep copy: replaying a stored trace was seen to rewrite the caller's PrimFunc in place.
        fresh = tvm.ir.load_json(tvm.ir.save_json(func))
        sch = s_tir.Schedule(ms.tune_context._normalize_mod(fresh))
        records[0].trace.apply_to_schedule(sch, remove_postproc=False)
        return sch

    def best_seconds(self, func: tirx.PrimFunc) -> float | None:
        records = self.records(func)
        return float(records[0].run_secs[0]) if records and records[0].run_secs else None

    def commit(self, func: tirx.PrimFunc, sch: s_tir.Schedule, run_secs: float) -> None:
        """Append one record (what tuning does for every measured candidate)."""
        mod = ms.tune_context._normalize_mod(func)
        workload = self.db.commit_workload(mod)
        self.db.commit_tuning_record(
            ms.database.TuningRecord(
                sch.trace, workload, [run_secs], self.tvm_target, ms.arg_info.ArgInfo.from_prim_func(func)
            )
        )

    def merge_from(self, other: ms.database.Database, skip: set[str] = frozenset()) -> int:
        """Append every record of `other` (a tuning run's work database) whose target is ours,
        except those whose trace is in `skip` (records the run was seeded with from here)."""
        key, n = _target_key(self.tvm_target), 0
        for rec in other.get_all_tuning_records():
            if str(rec.trace) in skip:
                continue
            if rec.target is not None and _target_key(rec.target) == key and rec.run_secs:
                workload = self.db.commit_workload(rec.workload.mod)
                self.db.commit_tuning_record(
                    ms.database.TuningRecord(rec.trace, workload, rec.run_secs, rec.target, rec.args_info)
                )
                n += 1
        return n
