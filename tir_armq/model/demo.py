"""The README demo's model part: a real int8 MobileNetV2 built with our kernels, run on the emulated
board, compared with the LiteRT interpreter, and its whole-model cost set against LiteRT's."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..database import SHIPPED
from ..targets import AARCH64_A72
from ..workloads.params import dtype_range
from .build import build_model
from .run import run_model

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEMO_MODEL = MODELS_DIR / "mobilenet_v2_035_96_int8.tflite"


def model_input(shape, dtype: str, seed: int = 0) -> np.ndarray:
    lo, hi = dtype_range(dtype)
    return np.random.default_rng(seed).integers(lo, hi, shape, endpoint=True).astype(dtype)


def run_model_demo(path: Path = DEMO_MODEL, db_roots: tuple = (SHIPPED,), key: str | None = None,
                   measure: bool = True) -> bool:
    """Print the comparison and the costs; True when our output equals LiteRT's."""
    from ..bench.costs import litert_cost
    from ..bench.litert import run_litert_guest
    from ..measure.cost import CountingGuest
    from ..measure.mca import CORTEX_A72, BlockCostCache

    built = build_model(path, AARCH64_A72, db_roots)
    (info,) = built.model.inputs
    x = model_input(info.shape, info.dtype)
    with tempfile.TemporaryDirectory(prefix="tir_armq_demo.") as tmp:
        tmp = Path(tmp)
        library = built.export(tmp / "model.so")
        ours = run_model(library, x, key=key)
        np.save(tmp / "x.npy", x)
        run_litert_guest(path, warmup=0, invokes=1, xnnpack=False, input=tmp / "x.npy", out=tmp / "y.npy")
        expected = np.load(tmp / "y.npy")
        diff = int(np.abs(ours.astype(np.int64) - expected.astype(np.int64)).max())
        equal = bool(np.array_equal(ours, expected))
        print(f"{path.name}: output equal to LiteRT (builtin kernels): {'yes' if equal else 'NO'}, "
              f"max difference {diff}")
        print(f"kernels from the tuning database: {built.from_database} of {built.kernels} "
              f"(the rest fixed schedules); build {built.build_seconds:.1f} s")
        if measure:
            cache = BlockCostCache(CORTEX_A72)
            with CountingGuest(CORTEX_A72) as guest:
                cost = guest.measure(library, "@vm:main", [x], warmup=2, calls=2)
            rows = [("tir_armq", cost),
                    ("LiteRT + XNNPACK", litert_cost(path, CORTEX_A72, cache, input=tmp / "x.npy")),
                    ("LiteRT builtin", litert_cost(path, CORTEX_A72, cache, xnnpack=False, input=tmp / "x.npy"))]
            print(f"{'whole model, one invoke':<26} {'instructions':>14} {'est. cycles (A72)':>18} {'vs ours':>8}")
            for name, c in rows:
                print(f"{name:<26} {c.instructions:>14,.0f} {c.cycles:>18,.0f} {c.cycles / cost.cycles:>7.2f}x")
    return equal
