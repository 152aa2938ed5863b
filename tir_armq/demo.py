"""The README's demo: every distinct conv and depthwise layer of a MobileNet on the kernel variant
a model build selects for it (requantize fused, as a model runs it), with its variant's fixed
schedule, run on the emulated aarch64 board through TVM RPC (and for ARMv7 under qemu-arm),
compared bit for bit with the numpy reference; then a real int8 MobileNetV2 built from its .tflite
with our kernels, compared with the LiteRT interpreter and costed against it (`tir_armq.model.demo`)."""

from __future__ import annotations

import re
import time

import numpy as np

from .build import compile_default
from .kernels import select
from .networks import distinct_layers
from .reference import reference_output
from .targets import AARCH64_A72, ARMV7_A7


def _mac_count(asm: str, pattern: str) -> int:
    return len(re.findall(rf"^\s*{pattern}", asm, re.M))


def run_demo(network: str = "mobilenet_v2", armv7: bool = True, key: str | None = None, model: bool = True) -> bool:
    """Print one row per layer, then the model build; True when every output is bit-exact."""
    from .board import emulated

    started_here = False
    if key is None:
        key, started_here = emulated.ensure_started()
    try:
        exact = _run(network, armv7, key)
        if model:
            from .model.demo import run_model_demo

            print()
            exact &= run_model_demo(key=key)
        return exact
    finally:
        if started_here:
            emulated.stop()


def _run(network: str, armv7: bool, key: str) -> bool:
    from .board import emulated

    targets = [AARCH64_A72] + ([ARMV7_A7] if armv7 else [])
    layers = distinct_layers(network)
    print(f"{network}: {len(layers)} distinct conv/depthwise layers as a model build runs them (int8 out), "
          "each on its kernel variant's fixed schedule; 'MACs in asm': the variant's multiply instructions")
    built = [layer.as_built_spec(seed=i) for i, (layer, _) in enumerate(layers)]
    kernels = [select(spec, inputs[1]) for spec, inputs in built]
    width = max(len(kernel.kernel_name(spec)) for kernel, (spec, _) in zip(kernels, built))
    columns = " ".join(f"{t.name + ' exact':>13} {'MACs in asm':>11}" for t in targets)
    header = f"{'kernel':<{width}} {'MMAC':>7} {columns}"
    print(header)
    all_exact = True
    start = time.monotonic()
    for kernel, (spec, inputs) in zip(kernels, built):
        args = kernel.arguments(spec, *inputs)
        expected = reference_output(spec, *inputs)
        func = kernel.build(spec)
        cells = []
        for target in targets:
            ex = compile_default(func, target)
            if target is AARCH64_A72:
                out = emulated.run_on_board(ex, kernel.kernel_name(spec), args, key=key)[-1]
            else:
                from .board.armv7 import run_armv7

                out = run_armv7(ex, kernel.kernel_name(spec), args)[-1]
            exact = np.array_equal(out, expected)
            all_exact &= exact
            asm_macs = _mac_count(ex.mod.inspect_source("s"), kernel.mac_pattern[target.isa])
            cells.append(f"{'yes' if exact else 'NO':>13} {asm_macs:>11}")
        print(f"{kernel.kernel_name(spec):<{width}} {spec.macs / 1e6:>7.2f} " + " ".join(cells), flush=True)
    verdict = "all bit-exact" if all_exact else "MISMATCH"
    print(f"{verdict}: {len(layers)} layers x {len(targets)} targets in {time.monotonic() - start:.0f} s")
    return all_exact
