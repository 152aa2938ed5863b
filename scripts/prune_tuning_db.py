"""Drop the shipped tuning records whose workload no longer exists.

A record is kept with its workload, the PrimFunc as it was tuned: when a workload's PrimFunc changes
(a new stage layout, an epilogue built for right shifts only), its old records can never match again.
This keeps the records of every workload that `tir-armq` can still ask for: each network layer's
tasks (int32 output, every variant with a search space; and as a model build runs it) and the
kernels of the models shipped in `tir_armq/models/` and of the full-size models
`scripts/make_model_files.py --full-size DIR` writes (pass DIR: their residual-ADD and classifier kernels are
no network layer's). A developer script: run it after re-tuning, then commit.

    python scripts/prune_tuning_db.py --full-size DIR [--db tir_armq/tuning_db] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tir_armq.database import SHIPPED_ROOT, TargetDatabase
from tir_armq.networks import NETWORKS, distinct_layers
from tir_armq.targets import TARGETS
from tir_armq.model.tasks import model_tasks
from tir_armq.tuning import as_built_tasks, layer_tasks

MODELS = Path(__file__).resolve().parents[1] / "tir_armq" / "models"


def current_tasks(full_size: Path) -> list:
    tasks = []
    for network in sorted(NETWORKS):
        for layer, _ in distinct_layers(network):
            tasks += layer_tasks(layer) + as_built_tasks(layer)
    for model in sorted(MODELS.glob("mobilenet_*.tflite")) + sorted(full_size.glob("*.tflite")):
        tasks += model_tasks(model)
    return tasks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=SHIPPED_ROOT, type=Path)
    parser.add_argument("--full-size", required=True, type=Path,
                        help="the folder of `make_model_files.py --full-size` (MobileNetV1/V2 1.0/224)")
    parser.add_argument("--dry-run", action="store_true", help="count only, change nothing")
    args = parser.parse_args()
    if not sorted(args.full_size.glob("*.tflite")):
        parser.error(f"{args.full_size}: no .tflite models; make them with make_model_files.py --full-size")
    funcs = [task.func for task in current_tasks(args.full_size)]
    for target in TARGETS.values():
        if not (args.db / target.name).exists():
            continue
        db = TargetDatabase(args.db, target)
        if args.dry_run:
            kept = sum(db.count(func) for func in funcs)  # a workload shared by two tasks counts twice
            print(f"{db.path}: {kept} records of current workloads (dry run)")
            continue
        kept, dropped = db.prune(funcs)
        print(f"{db.path}: kept {kept} records, dropped {dropped} of workloads that no longer exist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
