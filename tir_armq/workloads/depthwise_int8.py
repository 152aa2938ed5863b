"""The int8 multiply path of the depthwise workload (XNNPACK's "mla8" arithmetic), as a PrimFunc.

For int8 data and symmetric int8 weights in [-127, 127] (TFLite's int8 scheme, weight zero point
0), the data zero point moves out of the inner loop:

    sum_t (x_t - zx) * w_t  =  sum_t x_t * w_t  -  zx * sum_t w_t

The second term is folded into the bias once per call (`bias_vec`), padding keeps the value zx so
the identity holds on the border, and the products stay 8-bit x 8-bit. Two of them fit in int16
(|x * w| <= 128 * 127, twice that is 32512), so taps are taken in pairs:

  data_pad[n, y, x, c]            input padded with its zero point (int8)
  weight_vec[p, j, c, m]          weight of tap 2p + j (0 for the odd tap past the kernel); a tap's
                                  channels contiguous, as the lanes read them
  weight_sum[oc]                  sum_t weight[t, oc]
  bias_vec[oc]                    bias[oc] - zx * weight_sum[oc]
  conv -> output[n, oh, ow, c*M + m]
                                  bias_vec[c*M + m]  (the init)
                                  + sum_p int32(int16(x_2p) * int16(w_p0) + int16(x_2p+1) * int16(w_p1))

which LLVM lowers to SMULL/SMLAL on 8-bit lanes (int16 products) and SADDW into int32: half the
multiplies and half the loads of the int16 path. The result is bit-identical to the int16 path.

The second product of the last pair is guarded by `v_p * 2 + 1 < taps` (an odd tap count, 3x3 and
5x5, leaves it a phantom `x * 0`): unguarded, LLVM factors the unrolled pair into an int16 MUL.8H of
the summed, widened data and keeps the zero weight live (a spill in a 16-lane tile); guarded, the
last pair is a lone SMULL.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .depthwise import OP_NAME, DepthwiseConv2DSpec
from .requantize import requantize_block
from .stages import requantize_attrs

PATH = "int8"


def int8_path_applies(spec: DepthwiseConv2DSpec) -> bool:
    """int8 data and int8 weights with zero point 0; weights must then lie in [-127, 127] (TFLite's
    int8 spec guarantees it: -128 is never produced), a promise the caller makes by choosing it."""
    return (
        spec.data_dtype == "int8"
        and spec.weight_dtype == "int8"
        and not any(spec.weight_zero_points())
    )


def build_int8(spec: DepthwiseConv2DSpec) -> tirx.PrimFunc:
    if not int8_path_applies(spec):
        raise ValueError(
            "path: the int8 path needs int8 data and int8 weights with zero point 0 "
            f"(got {spec.data_dtype} data, {spec.weight_dtype} weights, weight zero point {spec.weight_zero_point})"
        )
    n_, h_, w_, c_ = spec.data_shape
    kh_, kw_ = spec.kernel
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh_, ow_ = spec.out_hw
    m_ = spec.multiplier
    oc_ = spec.out_channels
    pad = spec.padding
    hp, wp = h_ + pad.top + pad.bottom, w_ + pad.left + pad.right
    taps = kh_ * kw_
    pairs = (taps + 1) // 2
    last = taps - 1
    zx = spec.data_zero_point

    # Written in TVMScript rather than TE for one reason: the conv block's init is the folded bias
    # (TE drops reduction inits), so conv accumulates straight into its int32 destination (the
    # output, or the requantize epilogue's input): no bias pass, and the accumulator tile stays in
    # registers across the unrolled taps.
    # (The phantom tap past an odd kernel reads the last real tap; its weight is 0.)
    @T.macro
    def accumulate(data, weight, bias, acc):
        data_pad = T.sblock_alloc_buffer((n_, hp, wp, c_), "int8")
        weight_vec = T.sblock_alloc_buffer((pairs, 2, c_, m_), "int8")
        weight_sum = T.sblock_alloc_buffer((oc_,), "int32")
        bias_vec = T.sblock_alloc_buffer((oc_,), "int32")
        for oc, i, j in T.grid(oc_, kh_, kw_):
            with T.sblock("weight_sum"):
                v_oc, v_i, v_j = T.axis.remap("SRR", [oc, i, j])
                with T.init():
                    weight_sum[v_oc] = 0
                weight_sum[v_oc] = weight_sum[v_oc] + T.Cast("int32", weight[0, v_i, v_j, v_oc])
        for oc in range(oc_):
            with T.sblock("bias_vec"):
                v_oc = T.axis.remap("S", [oc])
                bias_vec[v_oc] = bias[v_oc] - zx * weight_sum[v_oc]
        for b, y, x, c in T.grid(n_, hp, wp, c_):
            with T.sblock("data_pad"):
                v_b, v_y, v_x, v_c = T.axis.remap("SSSS", [b, y, x, c])
                data_pad[v_b, v_y, v_x, v_c] = T.if_then_else(
                    pad.top <= v_y and v_y < pad.top + h_ and pad.left <= v_x and v_x < pad.left + w_,
                    data[v_b, v_y - pad.top, v_x - pad.left, v_c],
                    T.int8(zx),
                )
        for p, j, c, m in T.grid(pairs, 2, c_, m_):
            with T.sblock("weight_vec"):
                v_p, v_j, v_c, v_m = T.axis.remap("SSSS", [p, j, c, m])
                weight_vec[v_p, v_j, v_c, v_m] = T.if_then_else(
                    v_p * 2 + v_j < taps,
                    weight[0, T.min(v_p * 2 + v_j, last) // kw_, T.min(v_p * 2 + v_j, last) % kw_, v_c * m_ + v_m],
                    T.int8(0),
                )
        for b, y, x, c, m, p in T.grid(n_, oh_, ow_, c_, m_, pairs):
            with T.sblock("conv"):
                v_b, v_y, v_x, v_c, v_m, v_p = T.axis.remap("SSSSSR", [b, y, x, c, m, p])
                with T.init():
                    acc[v_b, v_y, v_x, v_c * m_ + v_m] = bias_vec[v_c * m_ + v_m]
                acc[v_b, v_y, v_x, v_c * m_ + v_m] = acc[v_b, v_y, v_x, v_c * m_ + v_m] + T.Cast(
                    "int32",
                    T.Cast("int16", data_pad[v_b, v_y * sh + v_p * 2 // kw_ * dh, v_x * sw + v_p * 2 % kw_ * dw, v_c])
                    * T.Cast("int16", weight_vec[v_p, 0, v_c, v_m])
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
                        * T.Cast("int16", weight_vec[v_p, 1, v_c, v_m]),
                        T.int16(0),
                    ),
                )

    if not spec.requantizes:

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer((n_, h_, w_, c_), "int8"),
            weight: T.Buffer((1, kh_, kw_, oc_), "int8"),
            bias: T.Buffer((oc_,), "int32"),
            output: T.Buffer((n_, oh_, ow_, oc_), "int32"),
        ):
            accumulate(data, weight, bias, output)

    else:
        out_dtype = spec.output_dtype
        epilogue = requantize_block((n_, oh_, ow_, oc_), out_dtype, spec.rounding)

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer((n_, h_, w_, c_), "int8"),
            weight: T.Buffer((1, kh_, kw_, oc_), "int8"),
            bias: T.Buffer((oc_,), "int32"),
            multiplier: T.Buffer((oc_,), "int32"),
            shift: T.Buffer((oc_,), "int32"),
            offset_clamp: T.Buffer((3,), "int32"),
            requantize: T.Buffer((n_, oh_, ow_, oc_), out_dtype),
        ):
            output = T.sblock_alloc_buffer((n_, oh_, ow_, oc_), "int32")
            accumulate(data, weight, bias, output)
            epilogue(output, multiplier, shift, offset_clamp, requantize)

    return func.with_attrs(
        {"global_symbol": OP_NAME, "tirx.noalias": True, "tir_armq.op": OP_NAME, "tir_armq.path": PATH,
         **requantize_attrs(spec)}
    )
