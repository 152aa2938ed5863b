"""A tuning record's schedule rebuilt for another thread count.

A record holds the trace of one design space at its tuned decisions (tile sizes, the padded input's
place, the epilogue's), for the thread count it was tuned on. Replayed as it stands on a build for
more threads, the kernel would run on one: the parallel loops are instructions of the trace. So a
build for N threads that finds no N-thread record takes the record of another thread count, finds
the design space its trace was sampled from (the same instructions, decisions aside), and replays
that space as the rule makes it for N threads at the record's decisions. The tuned choices carry
over; the parallel loops are the N-thread space's. A measured N-thread record still wins over it.
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from . import _rule_of, design_spaces

_POSTPROC = "EnterPostproc"


def _sampling(trace: s_tir.schedule.Trace) -> list:
    return [inst for inst in trace.insts if inst.kind.name.startswith("Sample")]


def _shape(trace: s_tir.schedule.Trace) -> list[tuple]:
    """What a trace does, decisions aside: each instruction that changes the schedule or samples, by
    kind, attributes and inputs, up to its post-processing. Look-ups (GetSBlock, GetLoops, ...) are
    not in it: where a rule looks its blocks up changes with its code, not with the schedule it
    makes. An input is named by what it is: a block by its name, a loop by its block and place
    among the block's loops, the output of an earlier instruction by that instruction's place."""
    names: dict = {}
    shape: list[tuple] = []

    def name(value):
        return names.get(value, str(value)) if isinstance(value, tvm.runtime.Object) else str(value)

    for inst in trace.insts:
        kind = inst.kind.name
        if kind == _POSTPROC:
            break
        if kind == "GetSBlock":
            names[inst.outputs[0]] = ("block", str(inst.attrs[0]))
            continue
        inputs = tuple(name(value) for value in inst.inputs)
        if kind.startswith("Get"):
            for j, out in enumerate(inst.outputs):
                names[out] = (kind, inputs, j)
            continue
        for j, out in enumerate(inst.outputs):
            names[out] = ("output", len(shape), j)
        shape.append((kind, str(inst.attrs), inputs))
    return shape


def space_index(func: tirx.PrimFunc, trace: s_tir.schedule.Trace, target: Target) -> int | None:
    """Which of `func`'s design spaces for `target` `trace` was sampled from, None for none."""
    wanted = _shape(trace)
    spaces = design_spaces(func, target)
    return next((i for i, space in enumerate(spaces) if _shape(space.trace) == wanted), None)


def retarget(func: tirx.PrimFunc, record: ms.database.TuningRecord, tuned_for: Target,
             target: Target) -> s_tir.Schedule | None:
    """`func` scheduled for `target` as `record`, tuned on `tuned_for` (another thread count), chose:
    the same design space at the same decisions, with `target`'s parallel loops. None where the
    record's trace is not one of the rule's spaces (an older rule's) or does not replay."""
    from ..database import schedule_of_copy

    index = space_index(func, record.trace, tuned_for)
    spaces = design_spaces(func, target)
    if index is None or index >= len(spaces):
        return None
    space = spaces[index].trace
    tuned, wanted = _sampling(record.trace), _sampling(space)
    if [i.kind.name for i in tuned] != [i.kind.name for i in wanted]:
        return None
    decisions = {inst: record.trace.get_decision(old) for old, inst in zip(tuned, wanted)}
    sch = schedule_of_copy(func)
    try:
        s_tir.schedule.Trace(space.insts, decisions).apply_to_schedule(sch, remove_postproc=True)
    except Exception:  # noqa: BLE001 - TVM raises several error kinds for a trace that does not fit
        return None
    finish = getattr(_rule_of(func), "parallel_stages", None)
    if finish is not None:
        finish(sch, target)
    return sch
