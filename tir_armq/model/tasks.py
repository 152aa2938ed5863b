"""The tuning tasks of a model: the kernels its build uses, each once, as the build will look them up."""

from __future__ import annotations

from pathlib import Path

from ..tuning import Task
from .quant_rewrite import rewrite_quantized_convs
from .tflite_import import load_tflite


def model_tasks(path: Path | str) -> list[Task]:
    """One task per distinct kernel of the model's build, named by its kernel name (requantize fused,
    the model's rounding and shift form), in the model's order. A kernel with one schedule (no
    search space) is a task too: its record, measured once, is what makes a build's report say where
    every kernel's time comes from."""
    _, sites, _ = rewrite_quantized_convs(load_tflite(path).mod)
    tasks: dict[str, Task] = {}
    for site in sites:
        if site.name not in tasks:  # a kernel name is one workload
            tasks[site.name] = Task(site.name, site.prim_func())
    return list(tasks.values())
