"""TFLite's integer requantize, in numpy: the reference the fused epilogue is checked against.

An int32 accumulator becomes an int8/uint8 output through a fixed-point multiplier and a shift per
output channel, then the output zero point and the activation clamp. TFLite's kernels use two
roundings of the final shift (`DepthwiseConvOutputRounding` in its sources), both after gemmlowp's
`SaturatingRoundingDoublingHighMul` (NEON's SQRDMULH):
- "away": `RoundingDivideByPOT`, ties away from zero (`MultiplyByQuantizedMultiplier`, the
  reference kernels);
- "upward": ties toward +inf (`kUpward`: what NEON's rounding shift SRSHL does alone), which the
  interpreter's optimized int8 depthwise kernels use.
They differ only on negative ties. Its conv and fully-connected kernels (ruy) round once instead:
- "single": `(x * multiplier + 2**(30 - shift)) >> (31 - shift)` in int64 (ruy's
  `MultiplyByQuantizedMultiplier`, TFLITE_SINGLE_ROUNDING's form), ties toward +inf.
Written from TFLite's `kernels/internal/common.h`, gemmlowp's `fixedpoint.h` and ruy's
`apply_multiplier.cc`, in int64 so that every int32 input, saturation edges included, has one answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_OUTPUT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
ROUNDINGS = ("away", "upward", "single")
# The rounding of the interpreter's builtin kernels, by layer kind (measured against LiteRT on the board
# with linear single-layer models, tests/test_model_build.py): its optimized depthwise kernels round
# the final shift's ties upward (kUpward), its conv and fully-connected kernels (ruy) round
# x * multiplier once. The forms differ only on ties; a fused ReLU6 clamps the negative ones away.
TFLITE_ROUNDING = {"depthwise": "upward", "conv": "single", "fc": "single"}


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite `QuantizeMultiplier`: `real ~= multiplier * 2**(shift - 31)`, multiplier a Q31 int32
    in [2**30, 2**31) (or 0), shift positive for a left shift."""
    if real < 0:
        raise ValueError(f"real: a requantize scale is never negative, got {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(math.floor(q * 2**31 + 0.5))  # std::round: half away from zero (q > 0 here)
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return q_fixed, shift


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp `SaturatingRoundingDoublingHighMul` (what NEON's SQRDMULH computes), int32 in/out."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C's int64 division truncates toward zero; numpy's // floors, so divide magnitudes.
    num = ab + nudge
    high = np.sign(num) * (np.abs(num) // (1 << 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high).astype(np.int64)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp `RoundingDivideByPOT`: x / 2**exponent rounded half away from zero, exponent in [0, 31]."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def rounding_shift_upward(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """x / 2**exponent rounded half toward +inf (TFLite's kUpward, NEON SRSHL; no int32 wrap)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    return (x + ((np.int64(1) << exponent) >> 1)) >> exponent


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                                     rounding: str = "away") -> np.ndarray:
    """TFLite `MultiplyByQuantizedMultiplier` on int32 values (x * 2**left wraps, as int32 does in
    C), its kUpward variant, or ruy's single rounding."""
    shift = np.asarray(shift, dtype=np.int64)
    if rounding == "single":
        total = 31 - shift
        prod = np.asarray(x, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
        # Exact (|prod| < 2**62); out of int32 only where the clamp takes it to the range's end.
        return np.clip((prod + (np.int64(1) << (total - 1))) >> total, INT32_MIN, INT32_MAX)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = (np.asarray(x, dtype=np.int64) << left).astype(np.int32)
    high = saturating_rounding_doubling_high_mul(shifted, multiplier)
    if rounding == "upward":
        return rounding_shift_upward(high, right)
    return rounding_divide_by_pot(high, right)


@dataclass(frozen=True)
class RequantizeParams:
    """Per-output-channel multiplier and shift (TFLite's `QuantizeMultiplier` of
    `input_scale * weight_scale[oc] / output_scale`), output zero point and activation clamp."""

    multiplier: np.ndarray  # int32 (OC,)
    shift: np.ndarray  # int32 (OC,), positive = left shift
    output_zero_point: int
    clamp: tuple[int, int]  # inclusive, in the output dtype's range
    output_dtype: str = "int8"
    rounding: str = "away"  # of the final shift: see the module docstring
    # Added after the shift instead of the zero point: TFLite's optimized int8 MEAN folds the input
    # zero point in (output zp - input zp * input scale / output scale), which may leave the dtype.
    offset: int | None = None

    @property
    def added(self) -> int:
        """What is added to the shifted accumulator before the clamp."""
        return self.output_zero_point if self.offset is None else self.offset

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding: expected one of {ROUNDINGS}, got {self.rounding!r}")
        if self.offset is not None and not -(1 << 14) <= self.offset <= 1 << 14:
            # The NEON epilogue adds it in saturating int16, exact for |offset| < 2**14.
            raise ValueError(f"offset: {self.offset} is outside [-2**14, 2**14]")
        if self.output_dtype not in _OUTPUT_RANGE:
            raise ValueError(f"output_dtype: expected int8 or uint8, got {self.output_dtype!r}")
        lo, hi = _OUTPUT_RANGE[self.output_dtype]
        if not lo <= self.output_zero_point <= hi:
            raise ValueError(f"output_zero_point: {self.output_zero_point} is outside {self.output_dtype} [{lo}, {hi}]")
        if not lo <= self.clamp[0] <= self.clamp[1] <= hi:
            raise ValueError(f"clamp: {self.clamp} is not an ordered range inside {self.output_dtype} [{lo}, {hi}]")
        m = np.asarray(self.multiplier)
        s = np.asarray(self.shift)
        if m.ndim != 1 or m.shape != s.shape:
            raise ValueError(f"multiplier, shift: expected two (OC,) arrays, got shapes {m.shape} and {s.shape}")
        if m.size and (m.min() < 0 or m.max() > INT32_MAX):
            raise ValueError("multiplier: Q31 fixed-point values in [0, 2**31)")
        if self.rounding == "single" and m.size and ((m != 0) & (m < 2**30)).any():
            # The NEON form saturates x << shift before SQRDMULH: exact only for normalised multipliers.
            raise ValueError("multiplier: single rounding takes QuantizeMultiplier's range, [2**30, 2**31) or 0")
        if s.size and (s.min() < -31 or s.max() > 30):
            raise ValueError(f"shift: TFLite's exponents lie in [-31, 30], got [{s.min()}, {s.max()}]")

    @classmethod
    def from_scales(cls, input_scale: float, weight_scales, output_scale: float, output_zero_point: int,
                    clamp: tuple[int, int], output_dtype: str = "int8", rounding: str = "away",
                    float_product: bool = False) -> RequantizeParams:
        """As TFLite's conv kernels derive them from the model's float32 scales: per-channel (int8)
        double(input_scale) * double(weight_scale) / double(output_scale); per-tensor uint8
        (`float_product`, TFLite's GetQuantizedConvolutionMultipler) with the product in float32."""
        f32 = np.float32

        def real(ws) -> float:
            if float_product:
                return float(f32(input_scale) * f32(ws)) / float(f32(output_scale))
            return float(f32(input_scale)) * float(f32(ws)) / float(f32(output_scale))

        pairs = [quantize_multiplier(real(ws)) for ws in np.atleast_1d(weight_scales)]
        return cls(
            multiplier=np.array([m for m, _ in pairs], dtype=np.int32),
            shift=np.array([s for _, s in pairs], dtype=np.int32),
            output_zero_point=int(output_zero_point),
            clamp=(int(clamp[0]), int(clamp[1])),
            output_dtype=output_dtype,
            rounding=rounding,
        )

    def broadcast(self, channels: int) -> RequantizeParams:
        """Per-tensor parameters (one value) repeated for every channel."""
        if self.multiplier.size == channels:
            return self
        if self.multiplier.size != 1:
            raise ValueError(f"multiplier: {self.multiplier.size} values for {channels} channels")
        return replace(self, multiplier=np.repeat(self.multiplier, channels), shift=np.repeat(self.shift, channels))

    def offset_clamp(self) -> np.ndarray:
        """(zero point or offset, clamp low, clamp high): the int32 argument of a requantizing PrimFunc."""
        return np.array([self.added, *self.clamp], dtype=np.int32)


def requantize(acc: np.ndarray, params: RequantizeParams) -> np.ndarray:
    """int32 accumulators (..., OC) -> the quantized output, channel on the last axis."""
    acc = np.asarray(acc)
    if acc.dtype != np.int32:
        raise TypeError(f"acc: expected int32, got {acc.dtype}")
    scaled = multiply_by_quantized_multiplier(acc, params.multiplier, params.shift, params.rounding)
    out = np.clip(scaled + params.added, *params.clamp)
    return out.astype(params.output_dtype)
