"""The pointwise conv in XNNPACK's qs8 GEMM "c8" arithmetic, as a PrimFunc.

For int8 data and symmetric int8 weights in [-127, 127] (TFLite's int8 scheme), the data zero point
is folded into the bias beforehand (`sum_k (x_k - zx) * w_k = sum_k x_k * w_k - zx * sum_k w_k`,
once at model build by the kernel table: no pass over the data or the weights at run time, and no
zero point in the PrimFunc), and the input channels K are taken 16 at a time, 8 consecutive ones in
the lanes: per output channel, SMULL of the low 8
products and SMLAL of the high 8 into int16 (two products fit: |x * w| <= 128 * 127), then SADALP
adds adjacent int16 pairs into 4 int32 lanes. Lane j of output channel oc therefore accumulates
input channels 16 kb + 8 h + 2 j + e:

  conv[n, oh, ow, oc, j]              sum_{kb, h, e} int32(x) * int32(w)         (K >= 16)
  conv_tail[n, oh, ow, oc, j]         sum_e ... over the last 8 channels         (K % 16 == 8)
  lane_sum[n, oh, ow, oc]             sum_j (conv + conv_tail)[..., oc, j]
  output[n, oh, ow, oc]               lane_sum + bias[oc]
  [requantize, residual_add]          as every conv kernel's epilogue

The weights are read where TFLite stores them (OHWI: 8 rows of 16 bytes, K apart), no copy.
`conv`, `conv_tail` and `lane_sum` are the blocks the c8 intrinsics (`intrinsics/mac_c8.py`)
replace; each writes a buffer of its own from a zero init, so each is a complete reduction block
that schedules can move, and its update alone matches the intrinsic.
Pointwise layers only (1x1 kernel, no padding, K and the output channels multiples of 8): every
MobileNet conv but the 3x3 stem. `c8_accumulate` builds these blocks for any source of K-vectors:
`conv_c8_im2col` runs them over the packed patches of a KxK conv (the stem's among them).

PrimFunc `(data, weight, bias[, multiplier, shift, offset_clamp][, residual, add_params], output)`.
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from .add import PARAM_NAMES as ADD_PARAM_NAMES
from .add import add_expr
from .conv import Conv2DSpec
from .requantize import requantize_block
from .stages import workload_attrs

NAME = "conv_c8"
K_STEP, K_TAIL, OC_TILE, LANES = 16, 8, 8, 4


def c8_accumulate(n_: int, oh_: int, ow_: int, oc_: int, k_: int, stride: tuple[int, int]):
    """The c8 GEMM of an `(n_, oh_, ow_, oc_)` output over `k_` input channels, as a TVMScript macro
    `(source, weight, bias, output)`: `source[b, y * sh, x * sw, k]` against `weight[oc, 0, 0, k]`
    (OHWI of a 1x1 conv), into the blocks `conv`, `conv_tail`, `lane_sum` and `output`. Shared by
    `conv_c8` (the source is the layer's input) and `conv_c8_im2col` (its packed patches)."""
    sh, sw = stride
    kb_ = k_ // K_STEP
    tail = k_ % K_STEP == K_TAIL
    has_steps = kb_ > 0  # TVMScript's `if` takes booleans only

    def lanes(conv, conv_tail, b, y, x, oc, j):
        """Lane j of the accumulators the layer has: 16-wide steps, the 8-wide tail, or both."""
        if kb_ and tail:
            return conv[b, y, x, oc, j] + conv_tail[b, y, x, oc, j]
        return conv[b, y, x, oc, j] if kb_ else conv_tail[b, y, x, oc, j]

    @T.macro
    def accumulate(source, weight, bias, output):
        conv = T.sblock_alloc_buffer((n_, oh_, ow_, oc_, LANES), "int32")
        conv_tail = T.sblock_alloc_buffer((n_, oh_, ow_, oc_, LANES), "int32")
        lane_sum = T.sblock_alloc_buffer((n_, oh_, ow_, oc_), "int32")
        if has_steps:
            for b, y, x, oc, j, kb, h, e in T.grid(n_, oh_, ow_, oc_, LANES, kb_, 2, 2):
                with T.sblock("conv"):
                    v_b, v_y, v_x, v_oc, v_j, v_kb, v_h, v_e = T.axis.remap(
                        "SSSSSRRR", [b, y, x, oc, j, kb, h, e])
                    with T.init():
                        conv[v_b, v_y, v_x, v_oc, v_j] = 0
                    conv[v_b, v_y, v_x, v_oc, v_j] = conv[v_b, v_y, v_x, v_oc, v_j] + T.Cast(
                        "int32", source[v_b, v_y * sh, v_x * sw, v_kb * K_STEP + v_h * K_TAIL + v_j * 2 + v_e]
                    ) * T.Cast("int32", weight[v_oc, 0, 0, v_kb * K_STEP + v_h * K_TAIL + v_j * 2 + v_e])
        if tail:
            for b, y, x, oc, j, e in T.grid(n_, oh_, ow_, oc_, LANES, 2):
                with T.sblock("conv_tail"):
                    v_b, v_y, v_x, v_oc, v_j, v_e = T.axis.remap("SSSSSR", [b, y, x, oc, j, e])
                    with T.init():
                        conv_tail[v_b, v_y, v_x, v_oc, v_j] = 0
                    conv_tail[v_b, v_y, v_x, v_oc, v_j] = conv_tail[v_b, v_y, v_x, v_oc, v_j] + T.Cast(
                        "int32", source[v_b, v_y * sh, v_x * sw, kb_ * K_STEP + v_j * 2 + v_e]
                    ) * T.Cast("int32", weight[v_oc, 0, 0, kb_ * K_STEP + v_j * 2 + v_e])
        for b, y, x, oc, j in T.grid(n_, oh_, ow_, oc_, LANES):
            with T.sblock("lane_sum"):
                v_b, v_y, v_x, v_oc, v_j = T.axis.remap("SSSSR", [b, y, x, oc, j])
                with T.init():
                    lane_sum[v_b, v_y, v_x, v_oc] = 0
                lane_sum[v_b, v_y, v_x, v_oc] = lane_sum[v_b, v_y, v_x, v_oc] + lanes(
                    conv, conv_tail, v_b, v_y, v_x, v_oc, v_j)
        for b, y, x, oc in T.grid(n_, oh_, ow_, oc_):
            with T.sblock("output"):
                v_b, v_y, v_x, v_oc = T.axis.remap("SSSS", [b, y, x, oc])
                output[v_b, v_y, v_x, v_oc] = lane_sum[v_b, v_y, v_x, v_oc] + bias[v_oc]

    return accumulate


def residual_add_block(shape: tuple[int, int, int, int], out_dtype: str):
    """The fused residual ADD of a requantizing conv, as a TVMScript macro
    `(requantize, residual, add_params, residual_add)`: TFLite's ADD (`add_expr`) of the
    requantized output and the `residual` input, `add_params` its int32 AddParams."""
    n_params = len(ADD_PARAM_NAMES)

    @T.macro
    def block(requantize, residual, add_params, residual_add):
        for b, y, x, oc in T.grid(*shape):
            with T.sblock("residual_add"):
                v_b, v_y, v_x, v_oc = T.axis.remap("SSSS", [b, y, x, oc])
                residual_add[v_b, v_y, v_x, v_oc] = add_expr(
                    requantize[v_b, v_y, v_x, v_oc], residual[v_b, v_y, v_x, v_oc],
                    [add_params[i] for i in range(n_params)], out_dtype)

    return block


def build_conv_c8(spec: Conv2DSpec) -> tirx.PrimFunc:
    """The caller (the kernel table) checks the scheme and the shape (`kernels/conv_c8.py`)."""
    n_, h_, w_, k_ = spec.data_shape
    oh_, ow_ = spec.out_hw
    oc_ = spec.out_channels
    accumulate = c8_accumulate(n_, oh_, ow_, oc_, k_, spec.stride)
    return gemm_func(spec, (oc_, 1, 1, k_), accumulate).with_attrs(workload_attrs(spec, NAME))


def gemm_func(spec: Conv2DSpec, weight_shape: tuple[int, ...], accumulate) -> tirx.PrimFunc:
    """The PrimFunc of a pointwise GEMM variant: `accumulate` (a TVMScript macro `(data, weight,
    bias, acc)` that writes the int32 accumulators) and `spec`'s epilogue, with the signature
    `(data, weight, bias[, multiplier, shift, offset_clamp][, residual, add_params], output)`."""
    n_, h_, w_, k_ = spec.data_shape
    oh_, ow_ = spec.out_hw
    oc_ = spec.out_channels
    data_shape, out_shape = (n_, h_, w_, k_), (n_, oh_, ow_, oc_)
    if not spec.requantizes:

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer(data_shape, "int8"),
            weight: T.Buffer(weight_shape, "int8"),
            bias: T.Buffer((oc_,), "int32"),
            output: T.Buffer(out_shape, "int32"),
        ):
            accumulate(data, weight, bias, output)

    elif not spec.residual:
        out_dtype = spec.output_dtype
        epilogue = requantize_block(out_shape, out_dtype, spec.rounding)

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer(data_shape, "int8"),
            weight: T.Buffer(weight_shape, "int8"),
            bias: T.Buffer((oc_,), "int32"),
            multiplier: T.Buffer((oc_,), "int32"),
            shift: T.Buffer((oc_,), "int32"),
            offset_clamp: T.Buffer((3,), "int32"),
            requantize: T.Buffer(out_shape, out_dtype),
        ):
            output = T.sblock_alloc_buffer(out_shape, "int32")
            accumulate(data, weight, bias, output)
            epilogue(output, multiplier, shift, offset_clamp, requantize)

    else:
        out_dtype = spec.output_dtype
        epilogue = requantize_block(out_shape, out_dtype, spec.rounding)
        add_residual = residual_add_block(out_shape, out_dtype)
        n_params = len(ADD_PARAM_NAMES)

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer(data_shape, "int8"),
            weight: T.Buffer(weight_shape, "int8"),
            bias: T.Buffer((oc_,), "int32"),
            multiplier: T.Buffer((oc_,), "int32"),
            shift: T.Buffer((oc_,), "int32"),
            offset_clamp: T.Buffer((3,), "int32"),
            residual: T.Buffer(out_shape, out_dtype),
            add_params: T.Buffer((n_params,), "int32"),
            residual_add: T.Buffer(out_shape, out_dtype),
        ):
            output = T.sblock_alloc_buffer(out_shape, "int32")
            requantize = T.sblock_alloc_buffer(out_shape, out_dtype)
            accumulate(data, weight, bias, output)
            epilogue(output, multiplier, shift, offset_clamp, requantize)
            add_residual(requantize, residual, add_params, residual_add)

    return func
