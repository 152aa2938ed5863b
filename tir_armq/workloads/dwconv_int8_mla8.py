"""Depthwise convolution in XNNPACK's "mla8" arithmetic (TFLite's int8 scheme), as a PrimFunc.

For int8 data and symmetric int8 weights in [-127, 127] (TFLite's int8 scheme, weight zero point
0), the data zero point moves out of the inner loop:

    sum_t (x_t - zx) * w_t  =  sum_t x_t * w_t  -  zx * sum_t w_t

The second term is folded into the bias at build time (`tir_armq.kernels`), padding keeps the
value zx (an argument) so the identity holds on the border, and the products stay 8-bit x 8-bit.
Two of them fit in int16 (|x * w| <= 128 * 127, twice that is 32512), so taps are taken in pairs,
and the weights come laid out in pairs at build time (`pair_taps`):

  weight[p, j, c, m]              weight of tap 2p + j (0 for the odd tap past the kernel); a tap's
                                  channels contiguous, as the lanes read them
  bias_vec[oc]                    the folded bias, copied into the kernel's own buffer (below)
  data_pad[n, y, x, c]            input padded with data_zero_point[0] (int8)
  conv -> output[n, oh, ow, c*M + m]
                                  bias_vec[c*M + m]  (the init)
                                  + sum_p int32(int16(x_2p) * int16(w_p0) + int16(x_2p+1) * int16(w_p1))

which LLVM lowers to SMULL/SMLAL on 8-bit lanes (int16 products) and SADDW into int32: half the
multiplies and half the loads of the int16 arithmetic, bit-identical to it.

The second product of the last pair is guarded by `v_p * 2 + 1 < taps` (an odd tap count, 3x3 and
5x5, leaves it a phantom `x * 0`): unguarded, LLVM factors the unrolled pair into an int16 MUL.8H of
the summed, widened data and keeps the zero weight live (a spill in a 16-lane tile); guarded, the
last pair is a lone SMULL.

`bias_vec` is for ARMv7's register spills, not for arithmetic: a buffer of the kernel's own (a
stack array, up to 256 channels) makes LLVM realign the frame, and q registers then spill to
16-byte aligned slots with VLD1/VST1 instead of VLDM/VSTM (Cortex-A7 estimate, MobileNetV1
56x56x128 stride 2, one record replayed: 378 us reading the bias argument, 290 us with the copy);
AArch64 keeps its accumulators and weights in its 32 registers either way.

PrimFunc `(data, weight, bias, data_zero_point[, multiplier, shift, offset_clamp], output)`.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .depthwise import DepthwiseConv2DSpec
from .requantize import requantize_block
from .stages import workload_attrs

NAME = "dwconv_int8_mla8"


def tap_pairs(spec: DepthwiseConv2DSpec) -> int:
    taps = spec.kernel[0] * spec.kernel[1]
    return (taps + 1) // 2


def pair_taps(spec: DepthwiseConv2DSpec, weight: np.ndarray) -> np.ndarray:
    """TFLite's `(1, KH, KW, C*M)` weights as the kernel reads them: `(pairs, 2, C, M)`, tap 2p + j
    at `[p, j]`, zeros for the phantom tap past an odd kernel."""
    c, m = spec.data_shape[3], spec.multiplier
    taps = weight.reshape(-1, c, m)  # (KH*KW, C, M): tap t = kh * KW + kw
    pairs = np.zeros((2 * tap_pairs(spec), c, m), weight.dtype)
    pairs[: taps.shape[0]] = taps
    return pairs.reshape(-1, 2, c, m)


def build_dwconv_int8_mla8(spec: DepthwiseConv2DSpec) -> tirx.PrimFunc:
    """The caller (the kernel table) checks the scheme: int8 data, int8 weights in [-127, 127]."""
    n_, h_, w_, c_ = spec.data_shape
    kh_, kw_ = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh_, ow_ = spec.out_hw
    m_ = spec.multiplier
    oc_ = spec.out_channels
    pad = spec.padding
    hp, wp = h_ + pad.top + pad.bottom, w_ + pad.left + pad.right
    taps = kh_ * kw_
    pairs = tap_pairs(spec)
    last = taps - 1

    # Written in TVMScript rather than TE for one reason: the conv block's init is the bias
    # (TE drops reduction inits), so conv accumulates straight into its int32 destination (the
    # output, or the requantize epilogue's input): no bias pass, and the accumulator tile stays in
    # registers across the unrolled taps.
    # (The phantom tap past an odd kernel reads the last real tap; its weight is 0.)
    @T.macro
    def accumulate(data, weight, bias, data_zero_point, acc):
        data_pad = T.sblock_alloc_buffer((n_, hp, wp, c_), "int8")
        bias_vec = T.sblock_alloc_buffer((oc_,), "int32")
        for oc in range(oc_):
            with T.sblock("bias_vec"):
                v_oc = T.axis.remap("S", [oc])
                bias_vec[v_oc] = bias[v_oc]
        for b, y, x, c in T.grid(n_, hp, wp, c_):
            with T.sblock("data_pad"):
                v_b, v_y, v_x, v_c = T.axis.remap("SSSS", [b, y, x, c])
                data_pad[v_b, v_y, v_x, v_c] = T.if_then_else(
                    pad.top <= v_y and v_y < pad.top + h_ and pad.left <= v_x and v_x < pad.left + w_,
                    data[v_b, v_y - pad.top, v_x - pad.left, v_c],
                    T.Cast("int8", data_zero_point[0]),
                )
        for b, y, x, c, m, p in T.grid(n_, oh_, ow_, c_, m_, pairs):
            with T.sblock("conv"):
                v_b, v_y, v_x, v_c, v_m, v_p = T.axis.remap("SSSSSR", [b, y, x, c, m, p])
                with T.init():
                    acc[v_b, v_y, v_x, v_c * m_ + v_m] = bias_vec[v_c * m_ + v_m]
                acc[v_b, v_y, v_x, v_c * m_ + v_m] = acc[v_b, v_y, v_x, v_c * m_ + v_m] + T.Cast(
                    "int32",
                    T.Cast("int16", data_pad[v_b, v_y * sh + v_p * 2 // kw_ * dh, v_x * sw + v_p * 2 % kw_ * dw, v_c])
                    * T.Cast("int16", weight[v_p, 0, v_c, v_m])
                    + T.if_then_else(
                        v_p * 2 + 1 < taps,
                        T.Cast(
                            "int16",
                            data_pad[
                                v_b,
                                v_y * sh + T.min(v_p * 2 + 1, last) // kw_ * dh,
                                v_x * sw + T.min(v_p * 2 + 1, last) % kw_ * dw,
                                v_c,
                            ],
                        )
                        * T.Cast("int16", weight[v_p, 1, v_c, v_m]),
                        T.int16(0),
                    ),
                )

    if not spec.requantizes:

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer((n_, h_, w_, c_), "int8"),
            weight: T.Buffer((pairs, 2, c_, m_), "int8"),
            bias: T.Buffer((oc_,), "int32"),
            data_zero_point: T.Buffer((1,), "int32"),
            output: T.Buffer((n_, oh_, ow_, oc_), "int32"),
        ):
            accumulate(data, weight, bias, data_zero_point, output)

    else:
        out_dtype = spec.output_dtype
        epilogue = requantize_block((n_, oh_, ow_, oc_), out_dtype, spec.rounding)

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer((n_, h_, w_, c_), "int8"),
            weight: T.Buffer((pairs, 2, c_, m_), "int8"),
            bias: T.Buffer((oc_,), "int32"),
            data_zero_point: T.Buffer((1,), "int32"),
            multiplier: T.Buffer((oc_,), "int32"),
            shift: T.Buffer((oc_,), "int32"),
            offset_clamp: T.Buffer((3,), "int32"),
            requantize: T.Buffer((n_, oh_, ow_, oc_), out_dtype),
        ):
            output = T.sblock_alloc_buffer((n_, oh_, ow_, oc_), "int32")
            accumulate(data, weight, bias, data_zero_point, output)
            epilogue(output, multiplier, shift, offset_clamp, requantize)

    return func.with_attrs(workload_attrs(spec, NAME))
