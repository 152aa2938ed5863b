"""The kernel test table: every kernel variant on every layer it applies to, with every epilogue.

XNNPACK generates one test battery per microkernel from one table of shapes; so do we. A case is
(layer, epilogue, variant): the layers are the named awkward ones below (and hypothesis' random
ones), the epilogues the int32 accumulators, the fused requantize and the fused residual ADD, and
the variants those of `tir_armq.kernels` whose `applies` takes the layer. Each case's id is its
kernel name; the runners (host, aarch64 board, ARMv7 under qemu-arm) take every case, so adding a
layer here, or a variant to the kernel table, adds it everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from tir_armq.kernels import DWCONV_INT16, ConvKernel, applicable
from tir_armq.reference import reference_output
from tir_armq.requantize import RequantizeParams, quantize_multiplier
from tir_armq.workloads import QuantConvSpec, conv_spec, depthwise_spec
from tir_armq.workloads.add import AddParams, add_params, has_tail
from tir_armq.workloads.params import dtype_range


@dataclass(frozen=True)
class Case:
    """One kernel variant on one layer, with inputs drawn from `seed`."""

    spec: QuantConvSpec
    kernel: ConvKernel
    seed: int
    extreme_values: bool = False

    @property
    def name(self) -> str:
        return self.kernel.kernel_name(self.spec)

    def inputs(self) -> tuple:
        """data, weight, bias: uniform over each dtype's range, or only its two end points (weights
        in [-127, 127] for a variant of TFLite's int8 scheme); the RequantizeParams when the layer
        requantizes; the residual input and AddParams when it fuses a residual add (so
        `reference_output(spec, *inputs)` and `kernel.arguments(spec, *inputs)` take them as they are)."""
        rng = np.random.default_rng(self.seed)

        def draw(shape, dtype, low=None):
            lo, hi = dtype_range(dtype)
            lo = lo if low is None else low
            if self.extreme_values:
                return rng.choice(np.array([lo, hi], dtype=dtype), size=shape)
            return rng.integers(lo, hi, size=shape, endpoint=True, dtype=dtype)

        spec = self.spec
        data = draw(spec.data_shape, spec.data_dtype)
        weight = draw(spec.weight_shape, spec.weight_dtype, -127 if self.kernel.symmetric_weights else None)
        bias = rng.integers(-(1 << 20), 1 << 20, size=spec.out_channels, dtype=np.int32)
        if not spec.requantizes:
            return data, weight, bias
        requantize = requantize_params(spec, rng)
        if not spec.residual:
            return data, weight, bias, requantize
        residual = draw(spec.out_shape, spec.output_dtype)
        return data, weight, bias, requantize, residual, random_add_params(spec.output_dtype, rng)

    def arguments(self) -> list[np.ndarray]:
        return self.kernel.arguments(self.spec, *self.inputs())

    def expected(self) -> np.ndarray:
        return reference_output(self.spec, *self.inputs())

    def __repr__(self) -> str:  # shown by hypothesis and pytest on failure
        return (f"Case({self.kernel.name}, {self.spec!r}, seed={self.seed}, "
                f"extreme_values={self.extreme_values})")


# Named layers that must always pass: one per awkward property, plus MobileNet's own.
DEPTHWISE_TABLE = {
    "mnv2_3x3_s1": dict(data_shape=(1, 8, 8, 32), weight_shape=(1, 3, 3, 32), padding="SAME",
                        data_zero_point=-128),
    "c100_not_multiple_of_8": dict(data_shape=(1, 6, 5, 100), weight_shape=(1, 3, 3, 100), padding="SAME"),
    "stride2_same": dict(data_shape=(1, 9, 10, 24), weight_shape=(1, 3, 3, 24), stride=2, padding="SAME",
                         data_zero_point=5),
    "dilation2": dict(data_shape=(1, 9, 9, 16), weight_shape=(1, 3, 3, 16), dilation=2, padding="SAME"),
    "multiplier2": dict(data_shape=(1, 7, 7, 12), weight_shape=(1, 3, 3, 24), padding="SAME",
                        data_zero_point=-7),
    "5x5_stride2": dict(data_shape=(1, 11, 11, 40), weight_shape=(1, 5, 5, 40), stride=2, padding="SAME",
                        data_zero_point=127),
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
    "pointwise_1x1": dict(data_shape=(1, 6, 6, 32), weight_shape=(24, 1, 1, 32), data_zero_point=-128),
    "first_layer_3x3_s2_cin3": dict(data_shape=(1, 11, 11, 3), weight_shape=(16, 3, 3, 3), stride=2,
                                    padding="SAME", data_zero_point=-3),
    "oc_ic_not_multiples": dict(data_shape=(1, 5, 6, 10), weight_shape=(13, 3, 3, 10), padding="SAME"),
    "5x5_dilation2": dict(data_shape=(1, 12, 12, 8), weight_shape=(8, 5, 5, 8), dilation=2, padding="SAME"),
    "uint8_asymmetric": dict(
        data_shape=(1, 5, 5, 16), weight_shape=(16, 1, 1, 16),
        data_dtype="uint8", weight_dtype="uint8", data_zero_point=0, weight_zero_point=255,
    ),
    # conv_c8's shapes: K = 24 (one 16-channel step and the 8-channel tail), stride 2 and a batch of
    # 2, and a classifier whose 100 output channels it pads to 104.
    "k24_tail": dict(data_shape=(1, 3, 5, 24), weight_shape=(24, 1, 1, 24), data_zero_point=17),
    "k40_s2_batch2": dict(data_shape=(2, 7, 7, 40), weight_shape=(16, 1, 1, 40), stride=2,
                          data_zero_point=-60),
    "classifier_oc100": dict(data_shape=(1, 1, 1, 64), weight_shape=(100, 1, 1, 64), data_zero_point=3),
    # conv_c8_im2col's shapes: MobileNetV2's stem itself (patches of 27 bytes packed to 32, padding
    # on the bottom and right only); a 1x3 kernel with a row stride, Cin 6 and explicit padding
    # (18-byte kernel rows: one 16-byte copy and 2 bytes each, K = 24: a step and the 8-wide tail);
    # odd Cin 5 dilated along W, VALID (single taps of 5 bytes: no whole 8-byte group, all bytes).
    "mnv2_stem": dict(data_shape=(1, 224, 224, 3), weight_shape=(32, 3, 3, 3), stride=2, padding="SAME",
                      data_zero_point=-1),
    "k1x3_s2x1_cin6": dict(data_shape=(1, 7, 9, 6), weight_shape=(16, 1, 3, 6), stride=(2, 1),
                           padding=(0, 1, 1, 0), data_zero_point=-100),
    "cin5_dilated_w_valid": dict(data_shape=(1, 9, 10, 5), weight_shape=(12, 3, 3, 5), dilation=(1, 2),
                                 data_zero_point=9),
    # conv_c2's: K = 20, channel pairs of pairs but no 8-channel step (conv_c8 does not apply); 5 groups
    # of 8 output channels, which no wider channel tile divides.
    "k20_pairs": dict(data_shape=(1, 4, 6, 20), weight_shape=(40, 1, 1, 20), data_zero_point=-5),
}
EPILOGUES = ("acc32", "requantize", "residual")


def layer_spec(kind: str, layer: dict, epilogue: str) -> QuantConvSpec | None:
    """The layer with the epilogue; None where it has none such (a residual ADD is a dense conv's,
    on outputs TFLite's ADD takes without its scalar tail)."""
    build = depthwise_spec if kind == "dw" else conv_spec
    if epilogue == "acc32":
        return build(**layer)
    out = layer.get("data_dtype", "int8")
    rounding = {"dw": "upward", "conv": "single"}[kind]
    spec = build(**layer, output_dtype=out, rounding=rounding)
    if epilogue == "requantize":
        return spec
    if kind == "dw" or has_tail(spec.out_shape):
        return None
    return replace(spec, residual=True)


def table_cases() -> list[tuple[str, Case]]:
    """(kernel name, case) for every layer of the tables x epilogue x variant that applies."""
    cases = []
    for kind, table in (("dw", DEPTHWISE_TABLE), ("conv", CONV_TABLE)):
        for i, layer in enumerate(table.values()):
            for epilogue in EPILOGUES:
                spec = layer_spec(kind, layer, epilogue)
                for kernel in applicable(spec) if spec is not None else []:
                    case = Case(spec, kernel, seed=i)
                    cases.append((case.name, case))
    return cases


def requantize_params(spec: QuantConvSpec, rng: np.random.Generator) -> RequantizeParams:
    """Per-channel scales that map the accumulators (bias up to 2**20) over the output range, one
    channel with a scale > 1 (a left shift, saturating), a zero point and a clamp inside the range."""
    scales = rng.uniform(2e-5, 3e-4, size=spec.out_channels)
    scales[0] = 1.5
    lo, hi = dtype_range(spec.output_dtype)
    zero_point = int(rng.integers(lo, hi, endpoint=True))
    clamp = (lo + int(rng.integers(0, 20)), hi - int(rng.integers(0, 20)))
    pairs = [quantize_multiplier(float(v)) for v in scales]
    multipliers, shifts = (np.array(values, np.int32) for values in zip(*pairs))
    return RequantizeParams(multipliers, shifts, zero_point, clamp, spec.output_dtype, spec.rounding)


def random_add_params(dtype: str, rng: np.random.Generator) -> AddParams:
    """TFLite's ADD parameters for random scales and zero points of the three tensors."""
    lo, hi = dtype_range(dtype)
    scale1, scale2, out_scale = rng.uniform(0.005, 0.3, size=3)
    zp1, zp2, out_zp = (int(v) for v in rng.integers(lo, hi, size=3, endpoint=True))
    return add_params(scale1, zp1, scale2, zp2, out_scale, out_zp, dtype)


@st.composite
def _common(draw, max_hw: int):
    kernel = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), st.tuples(*[st.integers(0, 2)] * 4)))
    # Large enough for the dilated kernel even with VALID padding.
    min_hw = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    hw = tuple(draw(st.integers(low, max(low, max_hw))) for low in min_hw)
    # Half the layers in TFLite's int8 scheme (int8, weight zero point 0), where every variant applies.
    tflite_int8 = draw(st.booleans())
    data_dtype = "int8" if tflite_int8 else draw(st.sampled_from(["int8", "uint8"]))
    weight_dtype = "int8" if tflite_int8 else draw(st.sampled_from(["int8", "uint8"]))
    data_zp = draw(_zero_point(data_dtype))
    output_dtype = draw(st.sampled_from(["int32", "int8", "uint8"]))
    return dict(kernel=kernel, stride=stride, dilation=dilation, padding=padding, hw=hw,
                tflite_int8=tflite_int8, data_dtype=data_dtype, weight_dtype=weight_dtype, data_zp=data_zp,
                output_dtype=output_dtype)


def _zero_point(dtype: str) -> st.SearchStrategy[int]:
    lo, hi = dtype_range(dtype)
    return st.one_of(st.sampled_from([lo, hi, 0 if lo < 0 else 128]), st.integers(lo, hi))


def _weight_zero_point(draw, c: dict, channels: int):
    if c["tflite_int8"]:
        return 0
    if draw(st.booleans()):
        return draw(_zero_point(c["weight_dtype"]))
    return draw(st.lists(_zero_point(c["weight_dtype"]), min_size=channels, max_size=channels))


def _cases(draw, spec: QuantConvSpec) -> list[Case]:
    """The layer on every variant that applies, all with the same seed."""
    seed, extreme = draw(st.integers(0, 2**32 - 1)), draw(st.booleans())
    return [Case(spec, kernel, seed, extreme) for kernel in applicable(spec)]


@st.composite
def depthwise_cases(draw, max_hw: int = 9, max_c: int = 36) -> list[Case]:
    c = draw(_common(max_hw))
    channels = draw(st.one_of(st.integers(1, max_c), st.just(100)))
    mult = draw(st.sampled_from([1, 1, 2, 3]))
    spec = depthwise_spec(
        (draw(st.integers(1, 2)), *c["hw"], channels), (1, *c["kernel"], channels * mult),
        stride=c["stride"], dilation=c["dilation"], padding=c["padding"],
        data_dtype=c["data_dtype"], weight_dtype=c["weight_dtype"], data_zero_point=c["data_zp"],
        weight_zero_point=_weight_zero_point(draw, c, channels * mult),
        output_dtype=c["output_dtype"],
    )
    return _cases(draw, spec)


@st.composite
def conv_cases(draw, max_hw: int = 8, max_c: int = 24) -> list[Case]:
    c = draw(_common(max_hw))
    # Multiples of 8 often, so that conv_c8 takes the 1x1 unpadded ones.
    cin = draw(st.one_of(st.integers(1, max_c), st.sampled_from([8, 16, 24, 40])))
    cout = draw(st.integers(1, max_c))
    if draw(st.booleans()):
        c.update(kernel=(1, 1), padding="VALID")
    spec = conv_spec(
        (draw(st.integers(1, 2)), *c["hw"], cin), (cout, *c["kernel"], cin),
        stride=c["stride"], dilation=c["dilation"], padding=c["padding"],
        data_dtype=c["data_dtype"], weight_dtype=c["weight_dtype"], data_zero_point=c["data_zp"],
        weight_zero_point=_weight_zero_point(draw, c, cout),
        output_dtype=c["output_dtype"],
    )
    if spec.requantizes and not has_tail(spec.out_shape) and draw(st.booleans()):
        spec = replace(spec, residual=True)
    return _cases(draw, spec)


# The kernel the cost tests measure on both ISAs: small enough to count in a second.
COST_SPEC = depthwise_spec((1, 10, 10, 32), (1, 3, 3, 32), padding="SAME", data_zero_point=-3)


def cost_inputs() -> list[np.ndarray]:
    """The arguments of `DWCONV_INT16` on COST_SPEC."""
    rng = np.random.default_rng(7)
    data = rng.integers(-128, 127, size=COST_SPEC.data_shape, endpoint=True, dtype=np.int8)
    weight = rng.integers(-127, 127, size=COST_SPEC.weight_shape, endpoint=True, dtype=np.int8)
    bias = rng.integers(-1000, 1000, size=COST_SPEC.out_channels, dtype=np.int32)
    return DWCONV_INT16.arguments(COST_SPEC, data, weight, bias)


def channel_outer_scalar(target):
    """`DWCONV_INT16` on COST_SPEC with the channel loop outermost: every inner loop walks a strided
    channel, so LLVM cannot vectorize it and each MAC is a scalar multiply-add. An obviously slower
    kernel."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(DWCONV_INT16.build(COST_SPEC))
    sch.compute_inline("data_pad")
    sch.compute_inline("data_vec")
    n, oh, ow, c, m, kh, kw = sch.get_loops("conv")
    sch.reorder(c, n, oh, ow, m, kh, kw)
    return tvm.compile(sch.mod, target=target.tvm_target())
