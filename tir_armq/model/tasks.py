"""The tuning tasks of a model: the kernels its build uses, each once, as the build will look them up."""

from __future__ import annotations

from pathlib import Path

import tvm_ffi

from ..tuning import Task, tunable
from .quant_rewrite import ConvSite, rewrite_quantized_convs
from .tflite_import import load_tflite


def model_tasks(path: Path | str) -> list[Task]:
    """One task per distinct conv kernel of the model's build whose variant has a search space,
    named by its kernel name (requantize fused, the model's rounding and shift form)."""
    _, sites, _ = rewrite_quantized_convs(load_tflite(path).mod)
    tasks, seen = [], set()
    for site in sites:
        if not isinstance(site, ConvSite):  # a standalone ADD or MEAN: no search space
            continue
        func = site.prim_func()
        key = tvm_ffi.structural_hash(func)
        if key not in seen and tunable(func):
            seen.add(key)
            tasks.append(Task(site.name, func))
    return tasks
