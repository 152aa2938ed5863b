"""Steps the schedule rules share, and the decisions of a rule that honours `tunable`."""

from __future__ import annotations

from collections.abc import Sequence

from tvm import s_tir, tirx

# MetaSchedule's compute-location decisions for "at the root" and "inlined into its consumer".
ROOT, INLINE = -1, -2


def is_kernel(func: tirx.PrimFunc, variant: str, stages: Sequence[str] = ()) -> bool:
    """A rule's gate: the PrimFunc is a kernel of `variant` (`tir_armq.kernel`) and keeps the
    `stages` the rule schedules (a rule declines what it does not recognise, as dlight's do)."""
    if func.attrs is None or func.attrs.get("tir_armq.kernel") != variant:
        return False
    sch = s_tir.Schedule(func)
    return all(has_block(sch, name) for name in stages)


class Decisions:
    """The knobs of one schedule: sampled instructions MetaSchedule explores when `tunable`, else
    the same choices fixed at their initial decision (no sampling instruction in the trace), so one
    rule gives both the design spaces and the fixed default, as dlight's `tunable` flag means."""

    def __init__(self, sch: s_tir.Schedule, tunable: bool) -> None:
        self.sch = sch
        self.tunable = tunable

    def tile(self, loop: s_tir.schedule.LoopRV, n: int, max_innermost_factor: int,
             decision: list[int]) -> list:
        """The factors of a perfect tile of `loop`."""
        if self.tunable:
            return self.sch.sample_perfect_tile(loop, n=n, max_innermost_factor=max_innermost_factor,
                                                decision=decision)
        return list(decision)

    def categorical(self, candidates: list[int], decision: int):
        if self.tunable:
            probs = [1 / len(candidates)] * len(candidates)
            return self.sch.sample_categorical(candidates, probs, decision=decision)
        return candidates[decision]

    def compute_at(self, block: s_tir.schedule.SBlockRV, decision: int = ROOT) -> None:
        """Place `block` where the sampled location says; fixed, at the root (it stays where the
        workload put it)."""
        if self.tunable:
            self.sch.compute_at(block, self.sch.sample_compute_location(block, decision=decision))
        elif decision != ROOT:
            raise ValueError(f"decision: a fixed schedule places stages at the root, got {decision}")


def pad_iterations(sch: s_tir.Schedule, multiples: dict[int, int]) -> tuple[str, str, str]:
    """Pad `conv`'s iteration axes (index -> multiple), e.g. channels to the vector width.

    Returns the names of the materialised data stage, the weight stage and the conv buffer's
    writer after padding. pad_einsum adds padded copies around `conv`; inlining the unpadded
    stages into them keeps the seed's stage count, with zeros in the padded lanes, so the
    tensorized loop never needs a predicate or a scalar tail.
    """
    conv = sch.get_sblock("conv")
    extents = [int(loop_extent(sch, loop)) for loop in sch.get_loops(conv)]
    padding = [1] * len(extents)
    needed = False
    for axis, multiple in multiples.items():
        padding[axis] = multiple
        needed |= extents[axis] % multiple != 0
    if not needed:
        return "data_vec", "weight_vec", "conv"
    sch.pad_einsum(conv, padding)
    for name in ("data_vec", "weight_vec"):
        if has_block(sch, f"{name}_pad"):
            sch.compute_inline(name)
    if has_block(sch, "conv_pad"):
        # conv_pad copies the valid region back; the epilogue reads the padded buffer directly.
        sch.compute_inline("conv_pad")
    data = "data_vec_pad" if has_block(sch, "data_vec_pad") else "data_vec"
    weight = "weight_vec_pad" if has_block(sch, "weight_vec_pad") else "weight_vec"
    return data, weight, "conv"


def loop_extent(sch: s_tir.Schedule, loop: s_tir.schedule.LoopRV) -> int:
    return int(sch.get(loop).extent)


def has_block(sch: s_tir.Schedule, name: str) -> bool:
    try:
        sch.get_sblock(name)
        return True
    except Exception:  # noqa: BLE001 - get_sblock raises a ScheduleError subclass per TVM build
        return False


def vectorize_below(sch: s_tir.Schedule, block: str, anchor: s_tir.schedule.LoopRV) -> None:
    """Vectorize the innermost loop `block` has below `anchor`, if any: compute-at drops unit
    loops, so a stage placed under `anchor` may have none of its own left."""
    loops = sch.get_loops(block)
    anchor_stmt = sch.get(anchor)
    depth = next(i for i, loop in enumerate(loops) if sch.get(loop).same_as(anchor_stmt))
    if len(loops) > depth + 1:
        sch.vectorize(loops[-1])


def tensorize_update(
    sch: s_tir.Schedule, conv: str, tile: s_tir.schedule.LoopRV, first_reduction: s_tir.schedule.LoopRV,
    intrin: str,
) -> None:
    """Make the loops from `tile` down one block, split off its zero-init at `first_reduction`,
    and replace the update with `intrin`.

    The only order TVM 0.27 accepts: tensorize before decomposing fails to match the reads,
    decomposing a loop first leaves a block tensorize cannot take.
    """
    outer = sch.blockize(tile)
    sch.decompose_reduction(outer, first_reduction)
    # The init stays a loop inside the decomposed block: make it one vector store.
    sch.vectorize(sch.get_loops(f"{conv}_init")[-1])
    sch.tensorize(outer, intrin)


def threads_of(target) -> int:
    """The threads a target's kernels run on: TVM's num-cores (`ArmTarget.threads`), one if unset."""
    return int(target.attrs.get("num-cores", 1))


# Rows per thread below which a schedule on several threads parallelises more than the rows (a 7x7
# plane's rows on 4 threads: 2, 2, 2 and 1, the slowest thread a third above the mean).
ROWS_PER_THREAD = 4


def parallel_pixels(sch: s_tir.Schedule, rows: s_tir.schedule.LoopRV, tiles: s_tir.schedule.LoopRV,
                    target) -> s_tir.schedule.LoopRV:
    """`parallel_rows` of the output rows, fused with the row's pixel tiles below them (`tiles`, the
    rows' only child) when the rows alone give a thread fewer than ROWS_PER_THREAD; the loop made
    parallel, or `rows` on one thread."""
    threads = threads_of(target)
    if threads > 1 and loop_extent(sch, rows) < ROWS_PER_THREAD * threads:
        rows = sch.fuse(rows, tiles)
    parallel_rows(sch, rows, target)
    return rows


def balance(extent: int, threads: int) -> float:
    """The mean thread's share of a parallel loop of `extent` over the busiest thread's (TVM's pool
    gives each thread ceil(extent / threads) iterations): 1.0 when it splits evenly."""
    return extent / (-(-extent // threads) * threads)


def parallel_fused(sch: s_tir.Schedule, outer: s_tir.schedule.LoopRV, inner: s_tir.schedule.LoopRV,
                   target) -> s_tir.schedule.LoopRV:
    """`outer` (channel tiles, whose count a sampled tile sets: two 8-channel columns of a 16-channel
    output would feed two threads) fused with `inner` (its only child: rows or pixel tiles) and run
    on the target's threads, each thread a contiguous run of (tile, row) pairs; the loop made
    parallel, or `outer` on one thread. Fused whatever the tile, so that every replay of a
    trace has the same loops."""
    if threads_of(target) > 1:
        outer = sch.fuse(outer, inner)
        sch.parallel(outer)
    return outer


def row_runs(sch: s_tir.Schedule, loop: s_tir.schedule.LoopRV, target
             ) -> tuple[s_tir.schedule.LoopRV, s_tir.schedule.LoopRV] | None:
    """`loop` (output rows) split in one run of rows per thread, the runs parallel: (runs, rows),
    LoopPartition's hint moved to the rows. None on one thread or where the rows do not split
    evenly (uneven runs need a predicate, which the tensorized epilogues refuse).

    Why: LoopPartition splits a hinted parallel loop at the padded border, and only the interior
    stays parallel; the border rows run on the launching thread before and after the launch (MNv2
    112x112x32 depthwise on 4 threads: 3 of 112 rows serial, the latency 10% above a quarter of
    one thread's). Under the runs it splits each thread's rows instead (the bounds are symbolic)."""
    threads = threads_of(target)
    if threads <= 1 or loop_extent(sch, loop) % threads:
        return None
    hint = "pragma_loop_partition_hint"
    hinted = hint in sch.get(loop).annotations
    if hinted:  # split refuses an annotated loop
        sch.unannotate(loop, hint)
    runs, rows = sch.split(loop, [threads, None])
    sch.parallel(runs)
    if hinted:
        sch.annotate(rows, hint, 1)
    return runs, rows


def parallel_rows(sch: s_tir.Schedule, loop: s_tir.schedule.LoopRV, target,
                  partitioned: bool = False) -> s_tir.schedule.LoopRV:
    """Run `loop` (output rows, or channel tiles: each iteration writes its own part of the output)
    on the target's threads. TVM's pool gives each thread ceil(extent / threads) iterations in one
    piece. Called before a reduction is decomposed: TVM makes a loop parallel only over blocks
    whose data flow it can check, and a decomposed update block is no longer one of them.

    `partitioned`: the rows carry (now or later) LoopPartition's hint; they are split in `row_runs`
    where they split evenly. Returns the loop that now stands for the rows, else `loop`."""
    if threads_of(target) <= 1:
        return loop
    split = row_runs(sch, loop, target) if partitioned else None
    if split is None:
        sch.parallel(loop)
        return loop
    return split[1]
