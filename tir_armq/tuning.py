"""Tuning driver: MetaSchedule `tune_tir` over our search space, one task per workload, records
merged into the target's database.

Each task tunes in a scratch work folder; only when it ends are its records appended to the
target database, so an interrupted run loses at most the task in flight and never damages what is
stored. A re-run skips workloads that already have `trials` records for the target (resume); a
workload whose PrimFunc changed since its records were made starts from the best of them, measured
again (`_carried_over`).
A candidate that crashes or hangs the board is a failed measurement; tuning goes on.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tvm import s_tir, tirx
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from .database import LayeredDatabase, TargetDatabase, replayed, schedule_of_copy
from .kernels import ConvKernel, applicable, by_name, design_spaces, space_size
from .measure.mca import CPU_MODELS
from .measure.runner import Armv7CycleEstimateRunner, CycleEstimateRunner, board_builder, register_intrinsics
from .networks import Layer
from .progress import Progress, output_to
from .schedules.common import INLINE
from .targets import ArmTarget


@dataclass(frozen=True)
class Task:
    """One PrimFunc to tune: a kernel variant on a layer, named by its kernel name."""

    name: str
    func: tirx.PrimFunc


@dataclass(frozen=True)
class RpcBoards:
    """Real boards behind a TVM RPC tracker (timings instead of the cycle estimate)."""

    host: str
    port: int
    key: str


def tunable(func: tirx.PrimFunc) -> bool:
    """The kernel's variant has a search space (more than its one fixed schedule)."""
    return space_size(func) != 1


def layer_tasks(layer: Layer) -> list[Task]:
    """The layer with int32 output (the accumulators), on each variant that applies and has a
    search space (which variant wins is measured per layer)."""
    spec = layer.spec()
    weight = layer.random_inputs()[1]
    tasks = [Task(kernel.kernel_name(spec), kernel.build(spec)) for kernel in applicable(spec, weight)]
    return [task for task in tasks if tunable(task.func)]


def as_built_tasks(layer: Layer, variant: str | None = None) -> list[Task]:
    """The layer as a model build runs it (`Layer.as_built`); a variant with one schedule too (its
    record is that schedule, measured). `variant`: the layer as built on that variant instead of the
    one a build selects (none where it does not apply), to tune a variant the table does not prefer."""
    if variant is None:
        spec, kernel, _ = layer.as_built()
        return [Task(kernel.kernel_name(spec), kernel.build(spec))]
    spec, inputs = layer.as_built_spec()
    kernel = by_name(variant)
    if not isinstance(kernel, ConvKernel) or not kernel.applies(spec, inputs[1]):
        return []
    return [Task(kernel.kernel_name(spec), kernel.build(spec))]


def _space(target) -> ms.space_generator.ScheduleFn:
    return ms.space_generator.ScheduleFn(
        lambda sch: design_spaces(sch.mod["main"], target),
        sch_rules=[],
        postprocs=[],
        mutator_probs={ms.mutator.MutateTileSize(): 0.6, ms.mutator.MutateComputeLocation(): 0.4},
    )


def host_filled_arguments(session, device, args_info, alloc_repeat: int):
    """MetaSchedule's argument allocation for RPC boards, filled from the host: the board runtimes
    pip installs (and our emulated board) lack `tvm.contrib.random`, which the default one needs."""
    import numpy as np
    from tvm.s_tir.meta_schedule.runner.utils import alloc_argument_common

    rng = np.random.default_rng(0)

    def fill(tensor) -> None:
        dtype, shape = str(tensor.dtype), tuple(int(d) for d in tensor.shape)
        if dtype.startswith(("int", "uint")):
            info = np.iinfo(dtype)
            values = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
        else:
            values = rng.standard_normal(shape).astype(dtype)
        tensor.copyfrom(values)

    return alloc_argument_common(fill, device, args_info, alloc_repeat)


def _runner(boards: RpcBoards | None, target: ArmTarget, cpu: str | None, symbol: str):
    if boards is None:
        if target.isa == "armv7":
            return Armv7CycleEstimateRunner(symbol)
        return CycleEstimateRunner(CPU_MODELS[cpu or target.mcpu], threads=target.threads)
    return ms.runner.RPCRunner(ms.runner.RPCConfig(tracker_host=boards.host, tracker_port=boards.port,
                                                   tracker_key=boards.key, session_timeout_sec=120),
                               f_alloc_argument=host_filled_arguments)


@derived_object
class _Measured(ms.measure_callback.PyMeasureCallback):
    """Hands each batch of the search's measured candidates to the progress line."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
        self.progress.measured([sum(map(float, r.run_secs)) / len(r.run_secs) if r.run_secs and not r.error_msg
                                else None for r in runner_results])


def _seed(run_db, known: list[TargetDatabase], task: Task, tvm_target, builder, runner,
          points: list[s_tir.Schedule], progress: Progress, keep: int = 8) -> set[str]:
    """Give the evolutionary search measured starting points: it picks its first population from
    the database's best records, not from the design spaces' own decisions. So the run's database
    gets the target database's best records of this workload (a resumed run goes on from them) and
    `points` measured with the run's own builder and runner: the records carried over from an
    earlier version of the workload and the design spaces' start points not stored yet. Returns the
    copied records' traces, which are not merged back (they are stored already)."""
    mod = ms.tune_context._normalize_mod(task.func)
    workload = run_db.commit_workload(mod)
    copied = set()
    for rec in (rec for db in known for rec in db.records(task.func)[:keep]):
        run_db.commit_tuning_record(ms.database.TuningRecord(rec.trace, workload, rec.run_secs, rec.target, rec.args_info))
        copied.add(str(rec.trace))
    args_info = ms.arg_info.ArgInfo.from_prim_func(task.func)
    times = _measure(points, task.func, tvm_target, builder, runner)
    progress.measured([sum(map(float, t)) / len(t) if t else None for t in times])
    for sch, run_secs in zip(points, times):
        if run_secs:
            run_db.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, run_secs, tvm_target, args_info))
    return copied


def _measure(schedules: list[s_tir.Schedule], func: tirx.PrimFunc, tvm_target, builder, runner) -> list[list | None]:
    """Build and run each schedule as the search's own candidates are; its measured times, or None
    if it failed (a failed build or run costs that candidate only). Built in one call: MetaSchedule's
    LocalBuilder starts its worker processes anew for every call (~40 s on a loaded 2-core host,
    for a candidate that takes ~2 s to build)."""
    if not schedules:
        return []
    args_info = ms.arg_info.ArgInfo.from_prim_func(func)
    built = builder.build([ms.builder.BuilderInput(sch.mod, tvm_target) for sch in schedules])
    times = []
    try:
        for result in built:
            if result.error_msg:
                times.append(None)
                continue
            (future,) = runner.run([ms.runner.RunnerInput(result.artifact_path, "cpu", args_info)])
            run = future.result()
            ms.utils.remove_build_dir(result.artifact_path)  # MetaSchedule's search does the same for its own
            times.append(list(run.run_secs) if run.run_secs else None)
    finally:
        for result in built[len(times):]:  # a runner that raised: the rest are not run
            if not result.error_msg:
                ms.utils.remove_build_dir(result.artifact_path)
    return times


def _carried_over(db: TargetDatabase, func: tirx.PrimFunc, keep: int = 8) -> list[s_tir.Schedule]:
    """The `keep` best records of earlier versions of the workload (`TargetDatabase.earlier_versions`:
    the same layer before its PrimFunc changed) replayed on `func`, those that replay: what was
    learnt tuning it is not lost, and each is measured again as the workload is now."""
    schedules, seen = [], set()
    for rec in db.earlier_versions(func):
        if len(schedules) == keep:
            break
        if str(rec.trace) in seen:
            continue
        seen.add(str(rec.trace))
        try:
            schedules.append(replayed(rec, func))
        except Exception:  # noqa: BLE001 - TVM raises several error kinds for a trace that does not fit
            continue
    return schedules


def _remeasure(db: TargetDatabase, task: Task, tvm_target, builder, runner, top: int) -> tuple[int, int]:
    """Measure the task's `top` best stored records again with this run's builder and runner and
    store the new times in place (a record that no longer builds or runs is dropped): records
    measured with an earlier cost method rank against the others no more (they kept their time).
    Returns (records updated, dropped)."""
    records = db.records(task.func, limit=top)
    if not records:
        return 0, 0
    schedules = [replayed(rec, task.func) for rec in records]
    times = _measure(schedules, task.func, tvm_target, builder, runner)
    run_secs = {str(rec.trace): secs for rec, secs in zip(records, times)}
    return db.update_run_secs(task.func, run_secs)


def _space_of(func: tirx.PrimFunc, tvm_target) -> list:
    return design_spaces(ms.tune_context._normalize_mod(func)["main"], tvm_target)


def start_points(func: tirx.PrimFunc, tvm_target) -> list[s_tir.Schedule]:
    """The candidates every tuning run measures first: each design space at its initial decisions
    and, next to it, the same schedule with one of its stages inlined instead of computed at the
    root (each sampled compute location in turn; replays that cannot inline are left out).

    Why: with tens of trials the search's cost model is untrained and its picks near random, so the
    seeds decide the result; and the best placement of the padded input flips with the layer
    (MNv2 14x14x576 as built: materialised 0.340 cycles/MAC at stride 1, inlined 0.349 at stride 2
    against 0.397 materialised), a one-decision step from the start point the search rarely takes.
    """
    points = []
    for sch in _space_of(func, tvm_target):
        points.append(sch)
        trace = sch.trace
        for inst in trace.insts:
            if inst.kind.name != "SampleComputeLocation" or int(trace.get_decision(inst)) == INLINE:
                continue
            variant = schedule_of_copy(func)
            try:
                trace.with_decision(inst, INLINE, remove_postproc=True).apply_to_schedule(variant, remove_postproc=True)
            except Exception:  # noqa: BLE001 - a replay the changed placement breaks (TVM raises several kinds)
                continue
            points.append(variant)
    return points


def tune(tasks: list[Task], target: ArmTarget, db_root: Path, *, trials: int = 64, cpu: str | None = None,
         boards: RpcBoards | None = None, seed: int = 0, remeasure: int = 0,
         base: LayeredDatabase | None = None) -> TargetDatabase:
    """Tune every task with `trials` candidates (0: its start points only, see `start_points`). The
    console shows one progress line (tasks, trials, best time, elapsed, ETA) and a line per task;
    MetaSchedule's logs and TVM's warnings go to `<db>/<target>/logs/tune-<time>.log`. With
    `remeasure`, each task's best `remeasure` stored records are measured again first (after the
    cost method changed), and the task is then tuned as usual if it has fewer than `trials`.
    `base`: records the run starts from without storing them again (the shipped ones, under a
    user's own database): they count towards `trials` and seed the search."""
    if target.isa not in ("aarch64", "armv7"):
        raise ValueError(f"target: tuning builds aarch64 or armv7 kernels, not {target.isa!r} ({target.name!r})")
    if trials < 0:
        raise ValueError(f"trials: a number of candidates per workload, 0 or more, got {trials}")
    register_intrinsics()
    db = TargetDatabase(db_root, target, create=True)
    log = db.path / "logs" / f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with output_to(log) as console:
        print(f"[tune] {len(tasks)} tasks for {target.name}, up to {trials} trials each; records in {db.path}, "
              f"logs in {log}", file=console, flush=True)
        progress = Progress(len(tasks), console)
        failed = [task.name for i, task in enumerate(tasks, 1)
                  if not _tune_task(i, task, db, target, trials, cpu, boards, seed, remeasure, progress, base)]
    if failed:
        raise TuningError(f"{len(failed)} of {len(tasks)} tasks failed: {', '.join(failed)} (the others' records "
                          f"are stored in {db.path}; why: {log})")
    return db


def _tune_task(index: int, task: Task, db: TargetDatabase, target: ArmTarget, trials: int, cpu: str | None,
               boards: RpcBoards | None, seed: int, remeasure: int, progress: Progress,
               base: LayeredDatabase | None) -> bool:
    """One task of `tune`: its records merged into `db`; False when MetaSchedule failed on it."""
    known = [db] + [other for other in (base.layers if base else []) if other.path != db.path]
    tvm_target = target.tvm_target()
    progress.task(index, task.name, trials)
    # One pair per task, made only for a task that measures: the builder's worker processes each
    # import TVM (a minute for a run that skips every task, before they were made lazily).
    builder = runner = None
    if remeasure:
        builder = board_builder(target.isa)
        runner = _runner(boards, target, cpu, str(task.func.attrs["global_symbol"]))
        before = db.best_seconds(task.func)
        updated, dropped = _remeasure(db, task, tvm_target, builder, runner, remeasure)
        after = db.best_seconds(task.func)
        progress.note(f"{task.name}: {updated} records measured again ({dropped} dropped), best "
                      f"{before * 1e6 if before else float('nan'):.1f} -> "
                      f"{after * 1e6 if after else float('nan'):.1f} us")
    have = sum(other.count(task.func) for other in known)
    size = space_size(task.func)
    # A start point not stored yet (a design space added since the last run) is measured even
    # when the task has its trials: the search would otherwise never see the new space.
    stored = {str(rec.trace) for other in known for rec in other.records(task.func)}
    carried = _carried_over(db, task.func) if not have else []
    if carried:
        progress.note(f"{task.name}: {len(carried)} best records of an earlier version of the workload "
                      "carried over (measured again)")
    stored |= {str(sch.trace) for sch in carried}
    points = carried + [sch for sch in start_points(task.func, tvm_target) if str(sch.trace) not in stored]
    done = have >= (trials if size is None else min(trials, size))
    if done and not points:
        progress.task_done(f"{have} records stored, skipped")
        return True
    if builder is None:
        builder = board_builder(target.isa)
        runner = _runner(boards, target, cpu, str(task.func.attrs["global_symbol"]))
    work = db.path / ".work" / task.name
    shutil.rmtree(work, ignore_errors=True)  # a previous run's leftovers: that task restarts
    work.mkdir(parents=True)
    run_db = ms.database.JSONDatabase(work_dir=str(work))
    budget = 0 if done else trials - have
    left = budget if size is None else min(budget, max(size - have - len(points), 0))
    progress.budget = max(len(points) + left, 1)
    copied = _seed(run_db, known, task, tvm_target, builder, runner, points, progress)
    if size is not None:
        # MetaSchedule's search never ends once every candidate is measured: ask for no more
        # than are left (the seeded records count as measured; duplicates only lower this).
        budget = min(budget, size - len(run_db.get_all_tuning_records()))
    ok = True
    try:
        if budget > 0:
            callbacks = ms.measure_callback.MeasureCallback.create("default") + [_Measured(progress)]
            ms.tune_tir(task.func, tvm_target, str(work), max_trials_global=budget,
                        num_trials_per_iter=min(32, budget), space=_space(tvm_target), builder=builder,
                        runner=runner, database=run_db, seed=seed, measure_callbacks=callbacks)
    except Exception as err:  # noqa: BLE001 - MetaSchedule raises TVMError, RuntimeError, ...
        # One task's failure (e.g. a replay MetaSchedule itself rejects) ends that task only: what
        # it measured is kept, the run goes on, and the run reports it at the end.
        ok = False
        progress.note(f"{task.name}: tuning failed ({str(err).splitlines()[0][:200]}); keeping what it measured")
    added = db.merge_from(run_db, skip=copied, func=task.func)
    shutil.rmtree(work, ignore_errors=True)
    best = db.best_seconds(task.func)
    progress.task_done(f"+{added} records, best {best * 1e6:.1f} us" if best else "no valid candidate")
    return ok


class TuningError(RuntimeError):
    """Some tasks of a tuning run failed; the records of all tasks are stored."""
