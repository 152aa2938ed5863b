"""Carry the shipped tuning records over to the kernel table's workloads (a one-off migration).

Records made before `tir_armq.kernels` were keyed by PrimFuncs named after their op
(`depthwise_conv2d_nhwc` / `conv2d_nhwc`) with a multiply path attribute (`tir_armq.path`: int8,
int16, c8), and the depthwise ones held the model's data zero point in their body. Each such
workload is matched to the layer task of today that computes the same layer on the same variant
(data, TFLite weight and output shapes; output dtype, rounding, right-shift form), its best
records are replayed on today's PrimFunc and measured again with this run's cost method (a body
changed: the weights now come laid out and the zero point folded at build time), and stored.
Old workloads are then dropped with `scripts/prune_tuning_db.py`.

    python scripts/rekey_tuning_db.py [--db tuning_db] [--target aarch64] [--keep 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tvm.s_tir import meta_schedule as ms

from tir_armq.database import WORKLOADS_FILE, TargetDatabase, schedule_of_copy
from tir_armq.measure.runner import register_intrinsics
from tir_armq.networks import NETWORKS, distinct_layers
from tir_armq.targets import get_target
from tir_armq.tuning import _measure, _runner, as_built_tasks, layer_tasks
from tir_armq.measure.runner import board_builder

# (op, multiply path) of a record made before the kernel table -> today's variant
LEGACY = {("depthwise_conv2d_nhwc", "int8"): "dwconv_int8_mla8", ("depthwise_conv2d_nhwc", "int16"): "dwconv_int16",
          ("conv2d_nhwc", "c8"): "conv_c8", ("conv2d_nhwc", "int16"): "conv_int16_lane"}


def _key(func, variant: str, weight_shape) -> tuple:
    info = ms.arg_info.ArgInfo.from_prim_func(func)
    out = info[-1].as_json()
    attrs = func.attrs
    return (variant, tuple(info[0].as_json()[2]), tuple(weight_shape), tuple(out[2]), str(out[1]),
            str(attrs.get("tir_armq.rounding", "")), bool(attrs.get("tir_armq.right_shifts", False)),
            any(p.name == "residual" for p in func.params))


def today_tasks() -> dict[tuple, object]:
    tasks = {}
    for network in sorted(NETWORKS):
        for layer, _ in distinct_layers(network):
            for task in as_built_tasks(layer) + layer_tasks(layer):
                weight_shape = layer.spec().weight_shape
                tasks[_key(task.func, str(task.func.attrs["tir_armq.kernel"]), weight_shape)] = task
    return tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="tuning_db", type=Path)
    parser.add_argument("--target", default="aarch64")
    parser.add_argument("--keep", type=int, default=8, help="best records carried per workload (default 8)")
    args = parser.parse_args()
    register_intrinsics()
    target = get_target(args.target)
    db = TargetDatabase(args.db, target)
    tasks = today_tasks()
    workloads = [json.loads(line) for line in (db.path / WORKLOADS_FILE).read_text().splitlines() if line.strip()]
    start = time.monotonic()
    for index, raw in enumerate(workloads):
        old = ms.database.Workload.from_json(raw).mod["main"]
        attrs = old.attrs
        variant = LEGACY.get((str(attrs.get("tir_armq.op", "")), str(attrs.get("tir_armq.path", "int16"))))
        if variant is None:
            continue
        weight_shape = ms.arg_info.ArgInfo.from_prim_func(old)[1].as_json()[2]
        task = tasks.get(_key(old, variant, weight_shape))
        head = f"[rekey {index + 1}/{len(workloads)}, {time.monotonic() - start:.0f} s]"
        if task is None:
            print(f"{head} workload {index} ({variant}): no task of today computes it; left to prune", file=sys.stderr)
            continue
        if db.count(task.func):
            print(f"{head} {task.name}: has records, skipped", file=sys.stderr)
            continue
        records = db.records(old, limit=args.keep)
        schedules = []
        for rec in records:
            sch = schedule_of_copy(task.func)
            try:
                rec.trace.apply_to_schedule(sch, remove_postproc=False)
            except Exception as err:  # noqa: BLE001 - TVM raises several error kinds for a trace that does not fit
                print(f"{head} {task.name}: a record does not replay ({str(err).splitlines()[-1][:100]})",
                      file=sys.stderr)
                continue
            schedules.append((rec, sch))
        builder, runner = board_builder(target.isa), _runner(None, target, None, task.name)
        times = _measure([sch for _, sch in schedules], task.func, target.tvm_target(), builder, runner)
        kept = 0
        for (rec, sch), secs in zip(schedules, times):
            if secs:
                db.commit(task.func, sch, sum(secs) / len(secs))
                kept += 1
        before = min(sum(r.run_secs) / len(r.run_secs) for r in records) if records else float("nan")
        after = db.best_seconds(task.func)
        print(f"{head} {task.name}: {kept} of {len(records)} records carried, best {before * 1e6:.1f} -> "
              f"{after * 1e6 if after else float('nan'):.1f} us", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
