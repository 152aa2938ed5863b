"""Carry the shipped tuning records over to the kernel table's workloads (a one-off migration).

Records made before `tir_armq.kernels` were keyed by PrimFuncs named after their op
(`depthwise_conv2d_nhwc` / `conv2d_nhwc`) with a multiply path attribute (`tir_armq.path`: int8,
int16, c8), and the depthwise ones held the model's data zero point in their body. Each such
workload is matched to the layer task of today that computes the same layer on the same variant
(data, TFLite weight and output shapes; output dtype, rounding, right-shift form), its best
records are replayed on today's PrimFunc and measured again with this run's cost method (a body
changed: the weights now come laid out and the zero point folded at build time), and stored.
Old workloads are then dropped with `scripts/prune_tuning_db.py`.

    python scripts/rekey_tuning_db.py [--db tir_armq/tuning_db] [--target aarch64] [--keep 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tvm.s_tir import meta_schedule as ms

from tir_armq.database import SHIPPED_ROOT, WORKLOADS_FILE, TargetDatabase, schedule_of_copy
from tir_armq.measure.runner import board_builder, register_intrinsics
from tir_armq.networks import NETWORKS, distinct_layers
from tir_armq.targets import get_target
from tir_armq.tuning import _runner, as_built_tasks, layer_tasks

# (op, multiply path) of a record made before the kernel table -> today's variant
LEGACY = {("depthwise_conv2d_nhwc", "int8"): "dwconv_int8_mla8",
          ("depthwise_conv2d_nhwc", "int16"): "dwconv_int16",
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
    parser.add_argument("--db", default=SHIPPED_ROOT, type=Path)
    parser.add_argument("--target", default="aarch64")
    parser.add_argument("--keep", type=int, default=8, help="best records carried per workload (default 8)")
    args = parser.parse_args()
    register_intrinsics()
    target = get_target(args.target)
    db = TargetDatabase(args.db, target)
    tasks = today_tasks()
    lines = (db.path / WORKLOADS_FILE).read_text().splitlines()
    workloads = [json.loads(line) for line in lines if line.strip()]
    start = time.monotonic()
    carried = []  # (task, schedule) of every record to carry, all built in one builder call
    for index, raw in enumerate(workloads):
        old = ms.database.Workload.from_json(raw).mod["main"]
        attrs = old.attrs
        variant = LEGACY.get((str(attrs.get("tir_armq.op", "")), str(attrs.get("tir_armq.path", "int16"))))
        if variant is None:
            continue
        weight_shape = ms.arg_info.ArgInfo.from_prim_func(old)[1].as_json()[2]
        task = tasks.get(_key(old, variant, weight_shape))
        if task is None:
            print(f"workload {index} ({variant}): no task of today computes it; left to prune",
                  file=sys.stderr)
            continue
        if db.count(task.func):
            print(f"{task.name}: has records, skipped", file=sys.stderr)
            continue
        for rec in db.records(old, limit=args.keep):
            sch = schedule_of_copy(task.func)
            try:
                rec.trace.apply_to_schedule(sch, remove_postproc=False)
            except Exception as err:  # noqa: BLE001 - TVM raises several kinds for a trace that does not fit
                print(f"{task.name}: a record does not replay ({str(err).splitlines()[-1][:100]})",
                      file=sys.stderr)
                continue
            carried.append((task, sch, float(sum(map(float, rec.run_secs)) / len(rec.run_secs))))
    print(f"[rekey] {len(carried)} records of {len({id(t) for t, _, _ in carried})} workloads to measure",
          file=sys.stderr, flush=True)
    tvm_target = target.tvm_target()
    inputs = [ms.builder.BuilderInput(sch.mod, tvm_target) for _, sch, _ in carried]
    built = board_builder(target.isa).build(inputs)
    print(f"[rekey] built in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    runners = {}
    for i, ((task, sch, before), result) in enumerate(zip(carried, built), 1):
        if result.error_msg:
            print(f"{task.name}: a record no longer builds", file=sys.stderr)
            continue
        runner = runners.setdefault(task.name, _runner(None, target, None, task.name))
        args_info = ms.arg_info.ArgInfo.from_prim_func(task.func)
        (future,) = runner.run([ms.runner.RunnerInput(result.artifact_path, "cpu", args_info)])
        run = future.result()
        ms.utils.remove_build_dir(result.artifact_path)
        if not run.run_secs:
            print(f"{task.name}: a record no longer runs ({run.error_msg})", file=sys.stderr)
            continue
        secs = sum(map(float, run.run_secs)) / len(run.run_secs)
        db.commit(task.func, sch, secs)
        print(f"[rekey {i}/{len(carried)}, {time.monotonic() - start:.0f} s] {task.name}: "
              f"{before * 1e6:.1f} -> {secs * 1e6:.1f} us", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
