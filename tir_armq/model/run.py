"""Run an exported model library on the emulated aarch64 board (or any board behind the tracker)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .build import sidecar
from .tflite_import import ModelError


def _model_input(library: Path) -> dict:
    meta_path = sidecar(library)
    try:
        meta = json.loads(meta_path.read_text())
        (info,) = meta["inputs"]
        return info | {"target": meta["target"], "threads": meta.get("threads", 1)}
    except FileNotFoundError:
        raise ModelError(f"{library}: no {meta_path.name} next to it; export the library with "
                         "`tir-armq build` (it writes both)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ModelError(f"{meta_path}: unreadable model description ({err})") from None


def run_model(library: Path | str, x: np.ndarray, *, key: str | None = None) -> np.ndarray:
    """The model's output for input `x` (checked against the exported description), computed on
    the board on as many threads as the library was built for; the emulated board is started if no
    tracker is running."""
    from ..board import emulated

    library = Path(library)
    if not library.is_file():
        raise ModelError(f"{library}: no such library")
    info = _model_input(library)
    if info["target"] not in ("aarch64", "aarch64-a53"):
        raise ModelError(f"{library}: built for {info['target']}; `run` drives an aarch64 board through TVM RPC")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"input: expected a numpy array, got {type(x).__name__}")
    if x.dtype != np.dtype(info["dtype"]):
        raise TypeError(f"input: the model takes {info['dtype']}, got {x.dtype}")
    if tuple(x.shape) != tuple(info["shape"]):
        raise ValueError(f"input: the model takes shape {tuple(info['shape'])}, got {tuple(x.shape)}")
    if key is None:
        key, _ = emulated.ensure_started()
    return emulated.run_vm_on_board(library, [x], key=key, threads=int(info.get("threads", 1)))
