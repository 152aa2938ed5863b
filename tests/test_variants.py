"""The kernel table itself: each variant's rule honours `tunable`, a workload holds none of a
model's constants, the table covers every layer, and the package has no import cycle."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest
import tvm
import tvm_ffi

from cases import CONV_TABLE, DEPTHWISE_TABLE, layer_spec, table_cases
from tir_armq.kernels import (CONV_KERNELS, DWCONV_INT8_MLA8, GAVGPOOL_Q8, REQUANTIZE_Q8, VADD_Q8, applicable,
                              design_spaces, fixed_schedule, select)
from tir_armq.targets import AARCH64_A72, ARMV7_A7

TABLE = table_cases()
OTHER_OPS = {
    "vadd_q8": lambda: VADD_Q8.build((1, 4, 4, 32), "int8"),
    "vadd_q8_tail": lambda: VADD_Q8.build((1, 3, 3, 56), "int8"),
    "gavgpool_q8": lambda: GAVGPOOL_Q8.build((1, 7, 7, 64), "int8", "away"),
    "requantize_q8": lambda: REQUANTIZE_Q8.build((1, 4, 4, 24), "uint8", "single"),
}


def _sampling(sch) -> list[str]:
    return [inst.kind.name for inst in sch.trace.insts if inst.kind.name.startswith("Sample")]


@pytest.mark.parametrize("target", [AARCH64_A72, ARMV7_A7], ids=lambda t: t.name)
@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
def test_fixed_schedule_holds_no_sampling_instruction(case, target):
    func = case.kernel.build(case.spec)
    sch = case.kernel.rule.apply(func, target.tvm_target(), False)
    assert isinstance(sch, tvm.s_tir.Schedule)
    assert not _sampling(sch), sch.trace


@pytest.mark.parametrize("name", sorted(OTHER_OPS))
def test_other_ops_have_one_fixed_schedule(name):
    func = OTHER_OPS[name]()
    assert not _sampling(fixed_schedule(func, AARCH64_A72.tvm_target()))
    assert len(design_spaces(func, AARCH64_A72.tvm_target())) == 1


@pytest.mark.parametrize("kernel", CONV_KERNELS, ids=lambda k: k.name)
def test_design_spaces_are_the_rules_tunable_schedules(kernel):
    """`tunable=True` gives the design spaces; every variant with a search space samples."""
    case = next(c for _, c in TABLE if c.kernel is kernel and c.spec.requantizes)
    spaces = design_spaces(case.kernel.build(case.spec), AARCH64_A72.tvm_target())
    assert spaces and all(isinstance(s, tvm.s_tir.Schedule) for s in spaces)
    if kernel.name != "conv_int16_lane":  # the only variant without a search space
        assert all(_sampling(s) for s in spaces)


@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
def test_quantization_is_no_part_of_the_workload(case):
    """Another model's zero points (data, weight: per tensor or per channel) give the same PrimFunc
    and the same kernel name: one tuned record serves both."""
    spec = case.spec
    lo = -128 if spec.data_dtype == "int8" else 0
    weight_zp = spec.weight_zero_point if case.kernel.symmetric_weights else (lo + 1,) * spec.out_channels
    if spec.weight_dtype != spec.data_dtype and not case.kernel.symmetric_weights:
        weight_zp = 1
    other = replace(spec, data_zero_point=lo + 7, weight_zero_point=weight_zp)
    assert case.kernel.applies(other)
    assert tvm_ffi.structural_equal(case.kernel.build(spec), case.kernel.build(other))
    assert case.kernel.kernel_name(other) == case.name


def test_every_variant_has_table_cases_and_every_layer_a_variant():
    kinds = {"dw": DEPTHWISE_TABLE, "conv": CONV_TABLE}
    for kind, table in kinds.items():
        for layer in table.values():
            assert applicable(layer_spec(kind, layer, "acc32"))
    assert {c.kernel.name for _, c in TABLE} == {k.name for k in CONV_KERNELS}


def test_tflite_int8_layers_take_the_8bit_variants():
    """Preference order: the int8 scheme's variants first, the int16 ones for everything else."""
    dw = layer_spec("dw", DEPTHWISE_TABLE["mnv2_3x3_s1"], "requantize")
    assert select(dw) is DWCONV_INT8_MLA8
    # conv_c2 first up to K = 384 (kernels.C2_MAX_INPUT_CHANNELS), conv_c8 above
    assert select(layer_spec("conv", CONV_TABLE["pointwise_1x1"], "requantize")).name == "conv_c2"
    from tir_armq.workloads import conv_spec

    assert select(conv_spec((1, 7, 7, 576), (160, 1, 1, 576), output_dtype="int8")).name == "conv_c8"
    # a residual input with channels not a multiple of 8 cannot be padded: not conv_c2, whatever K
    assert select(conv_spec((1, 4, 4, 16), (12, 1, 1, 16), output_dtype="int8", residual=True)).name != "conv_c2"
    assert select(layer_spec("dw", DEPTHWISE_TABLE["uint8_asymmetric"], "acc32")).name == "dwconv_int16"
    import numpy as np

    weight = np.full(dw.weight_shape, -128, np.int8)  # outside TFLite's int8 scheme
    assert select(dw, weight).name == "dwconv_int16"


def _imports(package: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (at any depth: lazy imports inside functions too)."""
    root = package.parent
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = base[: len(base) - node.level + 1] if node.level else []
                target = ".".join(parts + ([node.module] if node.module else []))
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            deps |= {c for c in candidates if c in modules and c != name}
        graph[name] = deps
    return graph


def test_no_import_cycles():
    import tir_armq

    graph = _imports(Path(tir_armq.__file__).parent)
    # A package's __init__ importing its own submodules is not a cycle.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles
