"""Cost of one layer on the emulated board, three ways: our kernel, XNNPACK (LiteRT), and TVM's own
MetaSchedule default space. All are per call, from the counting plugin and llvm-mca."""

from __future__ import annotations

import tempfile
from pathlib import Path

import tvm

from ..build import compile_default
from ..database import LayeredDatabase
from ..kernels import applicable, select
from ..measure.cost import Cost, CountingGuest, cost_of_regions, export_aarch64
from ..measure.mca import BlockCostCache, CpuModel
from ..measure.plugin import parse_counts
from ..measure.runner import CycleEstimateRunner, board_builder, register_intrinsics
from ..networks import Layer
from ..paths import cache_dir
from ..targets import AARCH64_A72
from .litert import run_litert_guest

MODELS_DIR = Path(__file__).resolve().parent / "models"
# LiteRT's per-invoke counts settle after ~15 invokes (CPython specialisation, allocator warm-up).
XNNPACK_WARMUP, XNNPACK_INVOKES = 20, 3


def _measure(ex: tvm.runtime.Executable, symbol: str, args: list, guest: CountingGuest) -> Cost:
    with tempfile.TemporaryDirectory(prefix="tir_armq_bench.") as tmp:
        return guest.measure(export_aarch64(ex, Path(tmp)), symbol, args)


def _compiled(func, db: LayeredDatabase | None) -> tuple[tvm.runtime.Executable, bool]:
    """`func` with its best record of the database, else its variant's fixed schedule; and whether
    it came from the database."""
    sch = db.best_schedule(func) if db is not None else None
    if sch is None:
        return compile_default(func, AARCH64_A72), False
    return tvm.compile(sch.mod, target=AARCH64_A72.tvm_target()), True


def ours_cost(layer: Layer, guest: CountingGuest, db: LayeredDatabase | None = None) -> tuple[Cost, str]:
    """Our kernel with int32 output: the best tuned record over the variants that apply (tuned
    with `tir-armq tune --epilogue int32`) when the database has one, else the fixed schedule of
    the variant a build selects. Returns the cost and where the kernel came from."""
    spec = layer.spec()
    data, weight, bias = layer.random_inputs()
    kernels = applicable(spec, weight)
    timed = [(secs, kernel) for kernel in kernels
             if db is not None and (secs := db.best_seconds(kernel.build(spec))) is not None]
    kernel = min(timed, key=lambda item: item[0])[1] if timed else kernels[0]
    ex, tuned = _compiled(kernel.build(spec), db)
    cost = _measure(ex, kernel.kernel_name(spec), kernel.arguments(spec, data, weight, bias), guest)
    return cost, f"{'tuned' if tuned else 'fixed'}:{kernel.name}"


def ours_int8_cost(layer: Layer, guest: CountingGuest, db: LayeredDatabase | None = None) -> tuple[Cost, str]:
    """Our kernel as a model build uses it (`Layer.as_built`): its tuned record when the database
    has one (`tir-armq tune --epilogue int8`, or `--model`), else its variant's fixed schedule."""
    spec, kernel, args = layer.as_built()
    ex, tuned = _compiled(kernel.build(spec), db)
    cost = _measure(ex, kernel.kernel_name(spec), args, guest)
    return cost, f"{'tuned' if tuned else 'fixed'}:{kernel.name}"


def xnnpack_cost(layer: Layer, model: CpuModel, cache: BlockCostCache | None = None) -> Cost:
    """One invoke of the layer's single-op int8 TFLite model, LiteRT's default (XNNPACK) delegate."""
    path = MODELS_DIR / f"{layer.name}.tflite"
    if not path.exists():
        raise FileNotFoundError(f"no single-layer model for {layer.name}: {path} (scripts/make_layer_models.py)")
    return litert_cost(path, model, cache)


def litert_cost(path: Path, model: CpuModel, cache: BlockCostCache | None = None, *, xnnpack: bool = True,
                input: Path | None = None) -> Cost:
    """One invoke of a .tflite model by LiteRT on the board: its default delegate (XNNPACK), or
    TFLite's builtin kernels (`xnnpack=False`)."""
    with tempfile.TemporaryDirectory(prefix="tir_armq_litert.") as tmp:
        counts_file = Path(tmp) / "counts.txt"
        run_litert_guest(path, warmup=XNNPACK_WARMUP, invokes=XNNPACK_INVOKES, xnnpack=xnnpack, input=input,
                         plugin_args=[f"out={counts_file}", "blocks=region", "bytes=on"])
        return cost_of_regions(parse_counts(counts_file), model, cache)


def tvm_default_database(layer: Layer, trials: int, epilogue: str = "int32") -> Path:
    tag = "" if epilogue == "int32" else f"-{epilogue}"
    return cache_dir() / "bench" / "tvm_default" / AARCH64_A72.name / f"{layer.name}{tag}-{trials}"


def tvm_default_cost(layer: Layer, guest: CountingGuest, trials: int, model: CpuModel,
                     epilogue: str = "int32") -> Cost | None:
    """Best of `trials` candidates of TVM's default MetaSchedule space for our PrimFunc, ranked by
    the same cycle estimate: the int32-output workload (`epilogue` "int32", beside `ours_cost`) or
    the layer as a model build runs it ("int8", `Layer.as_built`, beside `ours_int8_cost`). Tuned
    once; the database is kept, so a re-run measures the same kernel. None when no candidate built
    and ran (the tuning logs in the database folder say why)."""
    from tvm.s_tir import meta_schedule as ms

    import tvm.s_tir.tensor_intrin.arm_cpu  # noqa: F401 - the default arm space names these intrinsics

    register_intrinsics()
    target = AARCH64_A72.tvm_target()
    if epilogue == "int8":
        spec, kernel, args = layer.as_built()
    else:
        spec = layer.spec()
        data, weight, bias = layer.random_inputs()
        kernel = select(spec, weight)
        args = kernel.arguments(spec, data, weight, bias)
    func = kernel.build(spec)
    work = tvm_default_database(layer, trials, epilogue)
    done = work / "done"
    if not done.exists():
        work.mkdir(parents=True, exist_ok=True)
        ms.tune_tir(func, target, str(work), max_trials_global=trials, num_trials_per_iter=min(trials, 32),
                    builder=board_builder(), runner=CycleEstimateRunner(model), cost_model="xgb", seed=0)
        done.write_text("")
    db = ms.database.JSONDatabase(work_dir=str(work), allow_missing=False)
    sch = ms.tir_integration.compile_tir(db, func, target)
    if sch is None:
        return None
    return _measure(tvm.compile(sch.mod, target=target), kernel.kernel_name(spec), args, guest)
