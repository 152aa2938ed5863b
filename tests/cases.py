"""Test cases for both workloads: one table of awkward layers, and hypothesis strategies.

A case is a validated spec plus its inputs; every test (host, board, ARMv7, codegen) draws from
here, so adding a shape here adds it everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from tir_armq.reference import reference_output
from tir_armq.requantize import RequantizeParams, quantize_multiplier
from tir_armq.workloads import QuantConvSpec, conv_spec, depthwise_spec
from tir_armq.workloads.add import AddParams, add_params, has_tail
from tir_armq.workloads.params import dtype_range


@dataclass(frozen=True)
class Case:
    spec: QuantConvSpec
    seed: int
    extreme_values: bool = False

    def inputs(self) -> tuple:
        """data, weight, bias: uniform over each dtype's range, or only its two end points; the
        RequantizeParams when the workload requantizes; the residual input and AddParams when it
        fuses a residual add (so `spec.arguments(*inputs)` and `reference_output(spec, *inputs)`
        take them as they are)."""
        rng = np.random.default_rng(self.seed)

        def draw(shape, dtype):
            lo, hi = dtype_range(dtype)
            if self.extreme_values:
                return rng.choice(np.array([lo, hi], dtype=dtype), size=shape)
            return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)

        data = draw(self.spec.data_shape, self.spec.data_dtype)
        weight = draw(self.spec.weight_shape, self.spec.weight_dtype)
        bias = rng.integers(-(1 << 20), 1 << 20, size=self.spec.out_channels, dtype=np.int32)
        if not self.spec.requantizes:
            return data, weight, bias
        requantize = requantize_params(self.spec, rng)
        if not self.spec.residual:
            return data, weight, bias, requantize
        residual = draw(self.spec.out_shape, self.spec.output_dtype)
        return data, weight, bias, requantize, residual, random_add_params(self.spec.output_dtype, rng)

    def __repr__(self) -> str:  # shown by hypothesis and pytest on failure
        return f"Case({self.spec!r}, seed={self.seed}, extreme_values={self.extreme_values})"


# Named layers that must always pass: one per awkward property of the issue, plus MobileNet's own.
DEPTHWISE_TABLE = {
    "mnv2_3x3_s1": dict(data_shape=(1, 8, 8, 32), weight_shape=(1, 3, 3, 32), padding="SAME"),
    "c100_not_multiple_of_8": dict(data_shape=(1, 6, 5, 100), weight_shape=(1, 3, 3, 100), padding="SAME"),
    "stride2_same": dict(data_shape=(1, 9, 10, 24), weight_shape=(1, 3, 3, 24), stride=2, padding="SAME"),
    "dilation2": dict(data_shape=(1, 9, 9, 16), weight_shape=(1, 3, 3, 16), dilation=2, padding="SAME"),
    "multiplier2": dict(data_shape=(1, 7, 7, 12), weight_shape=(1, 3, 3, 24), padding="SAME"),
    "5x5_stride2": dict(data_shape=(1, 11, 11, 40), weight_shape=(1, 5, 5, 40), stride=2, padding="SAME"),
    "uint8_asymmetric": dict(
        data_shape=(1, 6, 6, 20), weight_shape=(1, 3, 3, 20), padding="SAME",
        data_dtype="uint8", weight_dtype="uint8", data_zero_point=255, weight_zero_point=0,
    ),
    "int8_extreme_zp_per_channel": dict(
        data_shape=(1, 5, 7, 8), weight_shape=(1, 3, 3, 16), padding=(2, 0, 1, 2),
        data_zero_point=-128, weight_zero_point=[127, -128] * 8,
    ),
}
CONV_TABLE = {
    "pointwise_1x1": dict(data_shape=(1, 6, 6, 32), weight_shape=(24, 1, 1, 32)),
    "first_layer_3x3_s2_cin3": dict(data_shape=(1, 11, 11, 3), weight_shape=(16, 3, 3, 3), stride=2, padding="SAME"),
    "oc_ic_not_multiples": dict(data_shape=(1, 5, 6, 10), weight_shape=(13, 3, 3, 10), padding="SAME"),
    "5x5_dilation2": dict(data_shape=(1, 12, 12, 8), weight_shape=(8, 5, 5, 8), dilation=2, padding="SAME"),
    "uint8_asymmetric": dict(
        data_shape=(1, 5, 5, 16), weight_shape=(16, 1, 1, 16),
        data_dtype="uint8", weight_dtype="uint8", data_zero_point=0, weight_zero_point=255,
    ),
}


def requantize_params(spec: QuantConvSpec, rng: np.random.Generator) -> RequantizeParams:
    """Per-channel scales that map the accumulators (bias up to 2**20) over the output range, one
    channel with a scale > 1 (a left shift, saturating), a zero point and a clamp inside the range."""
    scales = rng.uniform(2e-5, 3e-4, size=spec.out_channels)
    scales[0] = 1.5
    lo, hi = dtype_range(spec.output_dtype)
    zero_point = int(rng.integers(lo, hi, endpoint=True))
    clamp = (lo + int(rng.integers(0, 20)), hi - int(rng.integers(0, 20)))
    pairs = [quantize_multiplier(float(v)) for v in scales]
    return RequantizeParams(np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32),
                            zero_point, clamp, spec.output_dtype, spec.rounding)


def random_add_params(dtype: str, rng: np.random.Generator) -> AddParams:
    """TFLite's ADD parameters for random scales and zero points of the three tensors."""
    lo, hi = dtype_range(dtype)
    scale1, scale2, out_scale = rng.uniform(0.005, 0.3, size=3)
    zp1, zp2, out_zp = (int(v) for v in rng.integers(lo, hi, size=3, endpoint=True))
    return add_params(scale1, zp1, scale2, zp2, out_scale, out_zp, dtype)


def table_cases() -> list[tuple[str, Case]]:
    """(id, case) for every named layer, ids prefixed by the op; each layer also with the fused
    requantize epilogue (output in the data's dtype, as TFLite's models have it), and each dense
    conv whose output TFLite's ADD takes without a scalar tail also with a fused residual add."""
    cases = []
    for prefix, build, table in (("dw", depthwise_spec, DEPTHWISE_TABLE), ("conv", conv_spec, CONV_TABLE)):
        for i, (k, v) in enumerate(table.items()):
            cases.append((f"{prefix}-{k}", Case(build(**v), seed=i)))
            out = v.get("data_dtype", "int8")
            requantizing = build(**v, output_dtype=out)
            cases.append((f"{prefix}-{k}-requantize", Case(requantizing, seed=i)))
            if build is conv_spec and not has_tail(requantizing.out_shape):
                cases.append((f"{prefix}-{k}-residual", Case(build(**v, output_dtype=out, residual=True), seed=i)))
    return cases


@st.composite
def _common(draw, max_hw: int):
    kernel = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), st.tuples(*[st.integers(0, 2)] * 4)))
    # Large enough for the dilated kernel even with VALID padding.
    min_hw = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    hw = (draw(st.integers(min_hw[0], max(min_hw[0], max_hw))), draw(st.integers(min_hw[1], max(min_hw[1], max_hw))))
    data_dtype = draw(st.sampled_from(["int8", "uint8"]))
    weight_dtype = draw(st.sampled_from(["int8", "uint8"]))
    data_zp = draw(_zero_point(data_dtype))
    output_dtype = draw(st.sampled_from(["int32", "int8", "uint8"]))
    return dict(kernel=kernel, stride=stride, dilation=dilation, padding=padding, hw=hw,
                data_dtype=data_dtype, weight_dtype=weight_dtype, data_zp=data_zp, output_dtype=output_dtype)


def _zero_point(dtype: str) -> st.SearchStrategy[int]:
    lo, hi = dtype_range(dtype)
    return st.one_of(st.sampled_from([lo, hi, 0 if lo < 0 else 128]), st.integers(lo, hi))


def _weight_zero_point(draw, dtype: str, channels: int):
    if draw(st.booleans()):
        return draw(_zero_point(dtype))
    return draw(st.lists(_zero_point(dtype), min_size=channels, max_size=channels))


@st.composite
def depthwise_cases(draw, max_hw: int = 9, max_c: int = 36) -> Case:
    c = draw(_common(max_hw))
    channels = draw(st.one_of(st.integers(1, max_c), st.just(100)))
    mult = draw(st.sampled_from([1, 1, 2, 3]))
    spec = depthwise_spec(
        (draw(st.integers(1, 2)), *c["hw"], channels), (1, *c["kernel"], channels * mult),
        stride=c["stride"], dilation=c["dilation"], padding=c["padding"],
        data_dtype=c["data_dtype"], weight_dtype=c["weight_dtype"], data_zero_point=c["data_zp"],
        weight_zero_point=_weight_zero_point(draw, c["weight_dtype"], channels * mult),
        output_dtype=c["output_dtype"],
    )
    return Case(spec, seed=draw(st.integers(0, 2**32 - 1)), extreme_values=draw(st.booleans()))


@st.composite
def conv_cases(draw, max_hw: int = 8, max_c: int = 24) -> Case:
    c = draw(_common(max_hw))
    cin, cout = draw(st.integers(1, max_c)), draw(st.integers(1, max_c))
    spec = conv_spec(
        (draw(st.integers(1, 2)), *c["hw"], cin), (cout, *c["kernel"], cin),
        stride=c["stride"], dilation=c["dilation"], padding=c["padding"],
        data_dtype=c["data_dtype"], weight_dtype=c["weight_dtype"], data_zero_point=c["data_zp"],
        weight_zero_point=_weight_zero_point(draw, c["weight_dtype"], cout),
        output_dtype=c["output_dtype"],
    )
    if spec.requantizes and not has_tail(spec.out_shape) and draw(st.booleans()):
        spec = replace(spec, residual=True)
    return Case(spec, seed=draw(st.integers(0, 2**32 - 1)), extreme_values=draw(st.booleans()))


def reference(case: Case) -> np.ndarray:
    return reference_output(case.spec, *case.inputs())


# The kernel the cost tests measure on both ISAs: small enough to count in a second.
COST_SPEC = depthwise_spec((1, 10, 10, 32), (1, 3, 3, 32), padding="SAME", data_zero_point=-3)


def cost_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    data = rng.integers(-128, 127, size=COST_SPEC.data_shape, endpoint=True, dtype=np.int8)
    weight = rng.integers(-127, 127, size=COST_SPEC.weight_shape, endpoint=True, dtype=np.int8)
    bias = rng.integers(-1000, 1000, size=COST_SPEC.out_channels, dtype=np.int32)
    return COST_SPEC.arguments(data, weight, bias)


def channel_outer_scalar(target):
    """COST_SPEC with the channel loop outermost: every inner loop walks a strided channel, so LLVM
    cannot vectorize it and each MAC is a scalar multiply-add. An obviously slower kernel."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(COST_SPEC.prim_func())
    sch.compute_inline("data_pad")
    sch.compute_inline("data_vec")
    n, oh, ow, c, m, kh, kw = sch.get_loops("conv")
    sch.reorder(c, n, oh, ow, m, kh, kw)
    return tvm.compile(sch.mod, target=target.tvm_target())
