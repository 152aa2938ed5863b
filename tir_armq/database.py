"""Tuning records of one target: a MetaSchedule JSON database that never serves another target.

Layout: `<root>/<target name>/` holds `target.json` (which target the records are for) and
MetaSchedule's `database_workload.json` / `database_tuning_record.json`. Upstream TVM looks records
up by workload alone, so an A72 schedule would be applied on an A7; here the folder is bound to its
target when created, opening it for another target is refused, and a record whose own target
differs (a foreign record copied in) is never returned.

Files are only ever appended to, in MetaSchedule's own line format (MetaSchedule's JSONDatabase
reads them as they are); a corrupt or truncated file is reported with its name and line and left
exactly as it is.

Neither lookups nor writes load the database: opening MetaSchedule's JSONDatabase parses and replays
every record's trace (10-16 s for the 700 records shipped, and one record that no longer replays
makes the whole folder unreadable), while a model build needs the records of a few workloads and a
tuning task appends those of one. Both go through an index of the raw JSON lines, keyed by
structural hash, and parse only the matching workloads.

The package ships its own records (`SHIPPED_ROOT`, package data: found from any working directory and
from an installed wheel). A build reads a stack of databases (`build_databases`): a user's own on top,
then the shipped one; the first that has a record of a kernel gives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir import meta_schedule as ms

from .intrinsics import for_isa
from .targets import ArmTarget

TARGET_FILE = "target.json"
WORKLOADS_FILE = "database_workload.json"
RECORDS_FILE = "database_tuning_record.json"
LOCK_FILE = ".lock"
FORMAT = 1
SHIPPED_ROOT = Path(__file__).resolve().parent / "tuning_db"
SHIPPED = "shipped"  # the name `build_databases` and build reports give SHIPPED_ROOT


class DatabaseError(RuntimeError):
    """A database folder that cannot be used: corrupt, truncated, or for another target."""


def _target_key(target: tvm.target.Target) -> str:
    return str(target)


def _legacy_key(target: tvm.target.Target) -> str | None:
    """The key records of a one-thread target had before thread counts were kept apart: every
    target then said num-cores 4 and all kernels ran on one thread."""
    key = _target_key(target)
    return key.replace('"num-cores":1,', '"num-cores":4,') if '"num-cores":1,' in key else None


def _same_target(stored: str, target: tvm.target.Target) -> bool:
    return stored == _target_key(target) or stored == _legacy_key(target)


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
        self.path = Path(root) / target.db_name
        meta = self.path / TARGET_FILE
        if not meta.exists():
            if not create:
                raise DatabaseError(f"{self.path}: no tuning database for target {target.db_name!r}")
            self.path.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"format": FORMAT, "name": target.db_name,
                                        "target": _target_key(self.tvm_target)}, indent=1) + "\n")
        self._check_meta(meta)
        for name in (WORKLOADS_FILE, RECORDS_FILE):
            if (self.path / name).exists():
                _check_json_lines(self.path / name)
        # Traces name our intrinsics: register them before MetaSchedule parses a record.
        for_isa(target.isa)
        self._db: ms.database.JSONDatabase | None = None
        self._index: tuple[list, dict] | None = None
        self._signatures: dict[str, str] = {}  # a workload's JSON -> `_signature` of its PrimFunc
        self._load_index()

    @property
    def db(self) -> ms.database.JSONDatabase:
        """MetaSchedule's database of the folder (all records parsed and replayed; slow, for
        callers that want MetaSchedule's own view, e.g. to tune against it directly)."""
        if self._db is None:
            try:
                self._db = ms.database.JSONDatabase(work_dir=str(self.path), allow_missing=True)
            except Exception as err:  # noqa: BLE001 - TVM raises several error types for bad contents
                raise DatabaseError(f"{self.path}: MetaSchedule could not read the database: {err}") from None
        return self._db

    def _load_index(self) -> None:
        """Workloads as (structural hash, JSON) by line, and the raw records of each workload line."""
        workloads, records = [], {}
        path = self.path / WORKLOADS_FILE
        if path.exists():
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    value = json.loads(line)
                    if not (len(value) == 2 and all(isinstance(v, str) for v in value)):
                        raise DatabaseError(f"{path}: line {lineno} is not a MetaSchedule workload; left untouched")
                    workloads.append(value)
        path = self.path / RECORDS_FILE
        if path.exists():
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    value = json.loads(line)
                    if not (len(value) == 2 and isinstance(value[0], int) and 0 <= value[0] < len(workloads)
                            and isinstance(value[1], list) and len(value[1]) >= 3):
                        raise DatabaseError(f"{path}: line {lineno} is not a MetaSchedule tuning record of a known "
                                            "workload; left untouched")
                    records.setdefault(value[0], []).append(value[1])
        self._index = (workloads, records)

    def _check_meta(self, meta: Path) -> None:
        try:
            info = json.loads(meta.read_text())
            name, key = info["name"], info["target"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise DatabaseError(f"{meta}: unreadable target description ({err}); left untouched") from None
        if name != self.target.db_name or not _same_target(key, self.tvm_target):
            raise DatabaseError(
                f"{self.path}: records tuned for target {name!r} ({key}), refused for {self.target.db_name!r} "
                f"({_target_key(self.tvm_target)})"
            )

    def _raw_records(self, func: tirx.PrimFunc) -> list[tuple[float, list, ms.database.Workload]]:
        """(mean measured time, raw record, its workload) of every record of this target for the
        workload, fastest first; nothing parsed but the matching workloads."""
        mod = ms.tune_context._normalize_mod(func)
        workloads, raw_records = self._index
        shash = str(tvm_ffi.structural_hash(mod))
        found = []
        for index, (line_hash, _) in enumerate(workloads):
            if line_hash != shash or index not in raw_records:
                continue
            try:
                workload = ms.database.Workload.from_json(workloads[index])
                if not tvm_ffi.structural_equal(workload.mod, mod):
                    continue
                found += [(secs, raw, workload) for secs, raw in self._measured_here(raw_records[index])]
            except Exception as err:  # noqa: BLE001 - TVM raises several error types for bad contents
                raise DatabaseError(f"{self.path}: MetaSchedule could not read the records of a workload: {err}") from None
        found.sort(key=lambda item: item[0])
        return found

    def _measured_here(self, raws: list[list]) -> list[tuple[float, list]]:
        """(mean measured time, raw record) of those of `raws` measured on this target."""
        return [(sum(raw[1]) / len(raw[1]), raw) for raw in raws
                if raw[1] and raw[2] is not None and _same_target(_target_key(tvm.target.Target(raw[2])),
                                                                  self.tvm_target)]

    def records(self, func: tirx.PrimFunc, limit: int | None = None) -> list[ms.database.TuningRecord]:
        """Records of this workload for this target, best first (fastest mean measured time); the
        first `limit` only (each record parsed costs ~20 ms: a model build wants one)."""
        found = []
        for _, raw, workload in self._raw_records(func):
            if limit is not None and len(found) == limit:
                break
            try:
                found.append(ms.database.TuningRecord.from_json(raw, workload))
            except Exception as err:  # noqa: BLE001 - TVM raises several error kinds for a trace that does not fit
                # Parsing replays the trace: a record the workload's current schedule primitives or
                # intrinsics no longer accept is passed over, not fatal to a build.
                warnings.warn(f"{self.path / RECORDS_FILE}: a record of this workload no longer replays, "
                              f"skipped ({str(err).strip().splitlines()[-1][:120]})", stacklevel=2)
        return found

    def earlier_versions(self, func: tirx.PrimFunc) -> list[ms.database.TuningRecord]:
        """Records of this target for earlier versions of `func`'s workload, best first: stored
        workloads with its arguments (names, shapes, dtypes) and attributes (kernel variant,
        requantize promises) but another body: the same layer before its PrimFunc changed. Each is
        parsed against its own workload (its trace as measured then); what
        the caller wants is the trace, to replay on `func` and measure again (`tuning.tune` does)."""
        mod = ms.tune_context._normalize_mod(func)
        wanted, shash = _signature(mod), str(tvm_ffi.structural_hash(mod))
        workloads, raw_records = self._index
        found = []
        for index, (line_hash, _) in enumerate(workloads):
            if line_hash == shash or index not in raw_records:
                continue
            try:
                encoded, workload = workloads[index][1], None
                if encoded not in self._signatures:
                    workload = ms.database.Workload.from_json(workloads[index])
                    self._signatures[encoded] = _signature(workload.mod)
                if self._signatures[encoded] != wanted:
                    continue
                workload = workload or ms.database.Workload.from_json(workloads[index])
            except Exception as err:  # noqa: BLE001 - TVM raises several error types for bad contents
                raise DatabaseError(f"{self.path}: MetaSchedule could not read a workload: {err}") from None
            for secs, raw in self._measured_here(raw_records[index]):
                try:
                    found.append((secs, ms.database.TuningRecord.from_json(raw, workload)))
                except Exception:  # noqa: BLE001 - a record its own workload no longer replays: none to carry
                    continue
        found.sort(key=lambda item: item[0])
        return [rec for _, rec in found]

    def count(self, func: tirx.PrimFunc) -> int:
        """How many records this target has for the workload (none parsed)."""
        return len(self._raw_records(func))

    def best_schedule(self, func: tirx.PrimFunc) -> s_tir.Schedule | None:
        """The best record replayed on `func`, or None when this target has none for it."""
        records = self.records(func, limit=1)
        if not records:
            return None
        return replayed(records[0], func)

    def best_seconds(self, func: tirx.PrimFunc) -> float | None:
        records = self.records(func, limit=1)
        return float(records[0].run_secs[0]) if records and records[0].run_secs else None

    def commit(self, func: tirx.PrimFunc, sch: s_tir.Schedule, run_secs: float) -> None:
        """Append one record (what tuning does for every measured candidate)."""
        self._append_records(func, [ms.database.TuningRecord(
            sch.trace, ms.database.Workload(ms.tune_context._normalize_mod(func)), [run_secs], self.tvm_target,
            ms.arg_info.ArgInfo.from_prim_func(func))])

    def _workload_line(self, workload: list) -> int:
        """The line of a workload (MetaSchedule's JSON of it) in our workloads file, appended if new."""
        workloads, _ = self._index
        mod = None
        for index, (line_hash, _) in enumerate(workloads):
            if line_hash == workload[0]:
                mod = mod or ms.database.Workload.from_json(workload).mod
                if tvm_ffi.structural_equal(ms.database.Workload.from_json(workloads[index]).mod, mod):
                    return index
        _append_line(self.path / WORKLOADS_FILE, workload)
        workloads.append(workload)
        return len(workloads) - 1

    def _append_records(self, func: tirx.PrimFunc | None, records: Iterable[ms.database.TuningRecord]) -> int:
        """Append `records`, each under `func`'s workload (or, without it, its own module's), except
        those stored already; returns how many were appended. MetaSchedule writes the lines (into a scratch JSONDatabase: its serialisation of traces is
        its own), we append them under our workload lines."""
        with tempfile.TemporaryDirectory() as scratch_dir:
            scratch = ms.database.JSONDatabase(work_dir=scratch_dir, allow_missing=True)
            pinned = scratch.commit_workload(ms.tune_context._normalize_mod(func)) if func is not None else None
            for rec in records:
                scratch.commit_tuning_record(ms.database.TuningRecord(
                    rec.trace, pinned or scratch.commit_workload(rec.workload.mod), rec.run_secs, rec.target,
                    rec.args_info))
            workloads, lines = (_json_lines(Path(scratch_dir) / name) for name in (WORKLOADS_FILE, RECORDS_FILE))
        appended = 0
        with self._writing():
            ours = [self._workload_line(workload) for workload in workloads]
            for index, raw in lines:
                stored = self._index[1].setdefault(ours[index], [])
                if raw in stored:  # the same record (trace, times, target) merged before
                    continue
                _append_line(self.path / RECORDS_FILE, [ours[index], raw])
                stored.append(raw)
                appended += 1
        return appended

    @contextlib.contextmanager
    def _writing(self):
        """One writer at a time (two tuning runs may share a folder), on the files as they are now:
        the index is re-read under the lock, so workload lines never go stale."""
        with open(self.path / LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._load_index()
                yield
            finally:
                self._db = None  # MetaSchedule's view, if opened, no longer has everything
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _rewrite(self, workloads: list, records: list[tuple[int, list]]) -> None:
        """Replace both files whole, each atomically, both written before either is replaced (an
        interruption while writing leaves the old database)."""
        written = []
        for name, content in ((WORKLOADS_FILE, workloads), (RECORDS_FILE, [list(r) for r in records])):
            tmp = self.path / f".{name}.new"
            tmp.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in content))
            written.append((tmp, self.path / name))
        for tmp, path in written:
            os.replace(tmp, path)
        self._load_index()

    def update_run_secs(self, func: tirx.PrimFunc, run_secs: dict[str, list[float] | None]) -> tuple[int, int]:
        """Give this workload's records whose trace (as text) is a key of `run_secs` the measured
        times it maps to, or drop them where it maps to None (they no longer build or run): for
        records measured with an earlier cost method, which rank against the others no more.
        Returns (records updated, dropped)."""
        updated = dropped = 0
        with self._writing():
            keys = {}
            for _, raw, workload in self._raw_records(func):
                try:
                    keys[id(raw)] = str(ms.database.TuningRecord.from_json(raw, workload).trace)
                except Exception:  # noqa: BLE001 - a record that no longer replays keeps its line
                    continue
            workloads, raw_records = self._index
            records = []
            for index in range(len(workloads)):
                for raw in raw_records.get(index, []):
                    key = keys.get(id(raw))
                    if key in run_secs:
                        if run_secs[key] is None:
                            dropped += 1
                            continue
                        raw = [raw[0], [float(t) for t in run_secs[key]], *raw[2:]]
                        updated += 1
                    records.append((index, raw))
            self._rewrite(workloads, records)
        return updated, dropped

    def prune(self, keep: Iterable[tirx.PrimFunc]) -> tuple[int, int]:
        """Drop the records of every workload that is none of `keep` (records of workloads that no
        longer exist once a PrimFunc changes); both files are rewritten whole and replaced
        atomically, so an interruption leaves the old database. Returns (records kept, dropped)."""
        wanted = {str(tvm_ffi.structural_hash(ms.tune_context._normalize_mod(func))) for func in keep}
        with self._writing():
            workloads, raw_records = self._index
            lines, records, kept, dropped = [], [], 0, 0
            for index, workload in enumerate(workloads):
                raws = raw_records.get(index, [])
                if workload[0] not in wanted:
                    dropped += len(raws)
                    continue
                records += [(len(lines), raw) for raw in raws]
                kept += len(raws)
                lines.append(workload)
            self._rewrite(lines, records)
        return kept, dropped

    def merge_from(self, other: ms.database.Database, skip: set[str] = frozenset(),
                   func: tirx.PrimFunc | None = None) -> int:
        """Append every record of `other` (a tuning run's work database) whose target is ours,
        except those whose trace is in `skip` (records the run was seeded with from here).
        With `func` (the tuned workload), the records are stored under it, whatever module their
        run recorded, and only those whose trace replays on it (a record scheduled from a module
        a Python-side replay rewrote in place, see `tuning.start_points`, is no record of `func`)."""
        kept = [rec for rec in other.get_all_tuning_records()
                if str(rec.trace) not in skip and rec.target is not None
                and _same_target(_target_key(rec.target), self.tvm_target)
                and rec.run_secs and (func is None or _replays(rec.trace, func))]
        return self._append_records(func, kept)


def _signature(mod: tvm.IRModule) -> str:
    """What identifies a workload's layer across versions of its PrimFunc: the arguments of its
    main function (names, shapes, dtypes) and its attributes."""
    func = mod["main"]
    args = [[str(param.name), *map(str, info.as_json())]
            for param, info in zip(func.params, ms.arg_info.ArgInfo.from_prim_func(func))]
    attrs = sorted((str(k), str(v)) for k, v in (func.attrs or {}).items())
    return json.dumps([args, attrs])


def _json_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _append_line(path: Path, value: list) -> None:
    # One write per line, so a run killed between records leaves whole lines only.
    with open(path, "a") as f:
        f.write(json.dumps(value, separators=(",", ":")) + "\n")


def schedule_of_copy(func: tirx.PrimFunc) -> s_tir.Schedule:
    """A schedule of a deep copy of `func`, for replaying traces on: a trace replayed from Python
    rewrites the PrimFunc it was given in place from its first split on (TVM 0.27; MetaSchedule's
    own search does not), and `func` is the caller's, often a tuning task's."""
    return s_tir.Schedule(ms.tune_context._normalize_mod(tvm.ir.load_json(tvm.ir.save_json(func))))


def replayed(record: ms.database.TuningRecord, func: tirx.PrimFunc) -> s_tir.Schedule:
    """`record`'s trace replayed on a copy of `func` (the schedule it was measured as)."""
    sch = schedule_of_copy(func)
    record.trace.apply_to_schedule(sch, remove_postproc=False)
    return sch


def _replays(trace, func: tirx.PrimFunc) -> bool:
    sch = schedule_of_copy(func)
    try:
        trace.apply_to_schedule(sch, remove_postproc=False)
    except Exception:  # noqa: BLE001 - TVM raises several error kinds for a trace that does not fit
        return False
    return True



class LayeredDatabase:
    """Databases of one target in order of precedence (a user's own, then the shipped records): a
    workload's records are those of the first layer that has any."""

    def __init__(self, layers: list[TargetDatabase]) -> None:
        self.layers = layers

    def layer_of(self, func: tirx.PrimFunc) -> TargetDatabase | None:
        """The first layer with a record of `func`'s workload."""
        return next((db for db in self.layers if db.count(func)), None)

    def records(self, func: tirx.PrimFunc, limit: int | None = None) -> list[ms.database.TuningRecord]:
        db = self.layer_of(func)
        return db.records(func, limit) if db is not None else []

    def best_schedule(self, func: tirx.PrimFunc) -> s_tir.Schedule | None:
        db = self.layer_of(func)
        return db.best_schedule(func) if db is not None else None

    def best_seconds(self, func: tirx.PrimFunc) -> float | None:
        db = self.layer_of(func)
        return db.best_seconds(func) if db is not None else None


def build_databases(target: ArmTarget, roots: Iterable[Path | str], progress=None) -> LayeredDatabase:
    """The databases a build reads for `target`, in order of precedence: each of `roots` (a folder
    with one sub-folder per target, or `SHIPPED` for the package's own records). A root without
    records for the target is passed over (said on `progress`); a corrupt one is an error."""
    found = []
    for root in roots:
        path = SHIPPED_ROOT if root == SHIPPED else Path(root)
        if root != SHIPPED and not path.is_dir():
            raise DatabaseError(f"{path}: no such tuning database folder")
        try:
            found.append(TargetDatabase(path, target))
        except DatabaseError as err:
            if "no tuning database" not in str(err):
                raise
            if progress is not None:
                print(f"[build] {err}: not used", file=progress)
    return LayeredDatabase(found)


def source_name(db: TargetDatabase) -> str:
    """How reports name a database: `shipped`, or the folder the user gave."""
    return SHIPPED if db.path.parent == SHIPPED_ROOT else str(db.path.parent)
