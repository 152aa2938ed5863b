"""Dense KxK convs in XNNPACK's GEMM "c8" arithmetic on packed patches (im2col), as a PrimFunc.

TFLite's int8 scheme (int8 data, symmetric int8 weights in [-127, 127]), as `conv_c8`: the data
zero point is folded into the bias at build time. The reduction runs over an output pixel's patch,
its K = KH * KW * Cin values packed contiguously and padded up to a multiple of 8 (27 -> 32 for a
3x3 conv of an RGB image), so that the c8 step (8 int8 products per multiply, `intrinsics/mac_c8.py`)
wastes only the padding of the whole patch. XNNPACK's igemm pads each tap's Cin to 8 instead: 72
products for the 27 of an RGB stem. The folding stays exact because every value the kernel
multiplies is the data or its zero point: the spatial padding holds the zero point, and the padded
taps, whatever their value, carry weight 0.

  data_pad[n, y, x, c]        the input padded with data_zero_point[0]
  im2col[n, oh, ow, p]        data_pad[n, oh*sh + kh*dh, ow*sw + kw*dw, c] for the tap (kh, kw, c)
                              at packed position p < K (`PatchLayout`), the zero point for p >= K
  conv ... output             `conv_c8`'s blocks over im2col (a 1x1 conv, stride 1, Kp channels)
  [requantize, residual_add]  as every conv kernel's epilogue

The packed order puts whole 8-byte runs of contiguous input first (the stem's kernel rows are 9
bytes: 8 of each row, then the 3 rows' last bytes), so that packing is mostly vector copies. The
weights come re-laid out in the same order at build time (`pack_weights`: `(OC, 1, 1, Kp)`, zeros
in the padded taps): the c8 intrinsics take them as they take a pointwise conv's. Schedules compute
`im2col` per output row (or tile), just before the GEMM that reads it.

PrimFunc `(data, weight, bias, data_zero_point[, multiplier, shift, offset_clamp]
[, residual, add_params], output)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from .add import PARAM_NAMES as ADD_PARAM_NAMES
from .conv import Conv2DSpec
from .conv_c8 import K_TAIL, c8_accumulate, residual_add_block
from .requantize import requantize_block
from .stages import workload_attrs

NAME = "conv_c8_im2col"
# (runs, full) of the PrimFunc's PatchLayout: the packed patch starts with `runs` runs of `full`
# contiguous input bytes each (what the schedule copies in vectors).
RUNS_ATTR = "tir_armq.patch_runs"


def patch_size(spec: Conv2DSpec) -> int:
    """K: the values of one output pixel's patch."""
    return spec.kernel[0] * spec.kernel[1] * spec.data_shape[3]


def padded_patch_size(spec: Conv2DSpec) -> int:
    """Kp: K rounded up to the c8 step's 8 lanes."""
    return -(-patch_size(spec) // K_TAIL) * K_TAIL


@dataclass(frozen=True)
class PatchLayout:
    """Where each value of a pixel's patch goes in the packed patch, so that packing it is mostly
    8-byte copies.

    The patch is `runs` runs of `run` bytes contiguous in the input: kernel rows (KW * Cin values)
    when the kernel is not dilated along W, else single taps (Cin). The first `full` bytes of each
    run (its whole 8-byte groups) go first, run after run; then the `rest` bytes left of each run,
    run after run; then the padding to Kp. Packed position p holds
      p < F = runs * full:   byte p % full of run p // full
      F <= p < K:            byte full + (p - F) % rest of run (p - F) // rest
    which is the natural (kh, kw, c) order whenever run % 8 == 0.
    """

    kernel_w: int
    channels: int
    dilated: bool  # dilated along W: runs are single taps
    run: int
    runs: int

    @property
    def full(self) -> int:
        return self.run // K_TAIL * K_TAIL

    @property
    def rest(self) -> int:
        return self.run - self.full

    @property
    def grouped(self) -> int:
        """F: the bytes at the front, in whole 8-byte groups of contiguous input."""
        return self.runs * self.full

    def tap(self, p, where):
        """(kh, kw, c) of packed position p < K, for ints (numpy arrays) or PrimExprs: `where` is
        the select of the number type (`np.where`, `T.if_then_else`)."""
        if self.rest == 0:
            r, o = p // self.full, p % self.full
        elif self.full == 0:
            r, o = p // self.rest, p % self.rest
        else:
            t = p - self.grouped
            r = where(p < self.grouped, p // self.full, t // self.rest)
            o = where(p < self.grouped, p % self.full, self.full + t % self.rest)
        if self.dilated:
            return r // self.kernel_w, r % self.kernel_w, o
        return r, o // self.channels, o % self.channels


def patch_layout(spec: Conv2DSpec) -> PatchLayout:
    """The packed order of the layer's patches (and of its packed weights)."""
    kw_, c_ = spec.kernel[1], spec.data_shape[3]
    dilated = spec.dilation[1] != 1
    run = c_ if dilated else kw_ * c_
    return PatchLayout(kw_, c_, dilated, run, patch_size(spec) // run)


def pack_weights(spec: Conv2DSpec, weight: np.ndarray) -> np.ndarray:
    """TFLite's OHWI weights as the kernel reads them: `(OC, 1, 1, Kp)`, a filter's patch in the
    packed order (`PatchLayout`), zeros in the padded taps."""
    kh, kw, c = patch_layout(spec).tap(np.arange(patch_size(spec)), np.where)
    packed = np.zeros((weight.shape[0], 1, 1, padded_patch_size(spec)), weight.dtype)
    packed[:, 0, 0, : kh.size] = weight[:, kh, kw, c]
    return packed


def build_conv_c8_im2col(spec: Conv2DSpec) -> tirx.PrimFunc:
    """The caller (the kernel table) checks the scheme (`kernels/conv_c8_im2col.py`)."""
    n_, h_, w_, c_ = spec.data_shape
    (sh, sw), (dh, dw) = spec.stride, spec.dilation
    oh_, ow_ = spec.out_hw
    oc_ = spec.out_channels
    pad = spec.padding
    hp, wp = h_ + pad.top + pad.bottom, w_ + pad.left + pad.right
    k_, kp_ = patch_size(spec), padded_patch_size(spec)
    layout = patch_layout(spec)

    # (kh, kw, c) of a packed position; the padded ones read the last real tap (in bounds).
    def tap_h(k):
        return layout.tap(T.min(k, k_ - 1), T.if_then_else)[0]

    def tap_w(k):
        return layout.tap(T.min(k, k_ - 1), T.if_then_else)[1]

    def tap_c(k):
        return layout.tap(T.min(k, k_ - 1), T.if_then_else)[2]

    accumulate = c8_accumulate(n_, oh_, ow_, oc_, kp_, (1, 1))

    @T.macro
    def im2col(data, data_zero_point, patch):
        data_pad = T.sblock_alloc_buffer((n_, hp, wp, c_), "int8")
        for b, y, x, c in T.grid(n_, hp, wp, c_):
            with T.sblock("data_pad"):
                v_b, v_y, v_x, v_c = T.axis.remap("SSSS", [b, y, x, c])
                data_pad[v_b, v_y, v_x, v_c] = T.if_then_else(
                    pad.top <= v_y and v_y < pad.top + h_ and pad.left <= v_x and v_x < pad.left + w_,
                    data[v_b, v_y - pad.top, v_x - pad.left, v_c],
                    T.Cast("int8", data_zero_point[0]),
                )
        # The padded taps hold the zero point.
        for b, y, x, k in T.grid(n_, oh_, ow_, kp_):
            with T.sblock("im2col"):
                v_b, v_y, v_x, v_k = T.axis.remap("SSSS", [b, y, x, k])
                patch[v_b, v_y, v_x, v_k] = T.if_then_else(
                    v_k < k_,
                    data_pad[v_b, v_y * sh + tap_h(v_k) * dh, v_x * sw + tap_w(v_k) * dw, tap_c(v_k)],
                    T.Cast("int8", data_zero_point[0]),
                )

    data_shape, weight_shape, out_shape = (n_, h_, w_, c_), (oc_, 1, 1, kp_), (n_, oh_, ow_, oc_)
    patch_shape = (n_, oh_, ow_, kp_)
    if not spec.requantizes:

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer(data_shape, "int8"),
            weight: T.Buffer(weight_shape, "int8"),
            bias: T.Buffer((oc_,), "int32"),
            data_zero_point: T.Buffer((1,), "int32"),
            output: T.Buffer(out_shape, "int32"),
        ):
            patch = T.sblock_alloc_buffer(patch_shape, "int8")
            im2col(data, data_zero_point, patch)
            accumulate(patch, weight, bias, output)

    elif not spec.residual:
        out_dtype = spec.output_dtype
        epilogue = requantize_block(out_shape, out_dtype, spec.rounding)

        @T.prim_func(s_tir=True)
        def func(
            data: T.Buffer(data_shape, "int8"),
            weight: T.Buffer(weight_shape, "int8"),
            bias: T.Buffer((oc_,), "int32"),
            data_zero_point: T.Buffer((1,), "int32"),
            multiplier: T.Buffer((oc_,), "int32"),
            shift: T.Buffer((oc_,), "int32"),
            offset_clamp: T.Buffer((3,), "int32"),
            requantize: T.Buffer(out_shape, out_dtype),
        ):
            patch = T.sblock_alloc_buffer(patch_shape, "int8")
            output = T.sblock_alloc_buffer(out_shape, "int32")
            im2col(data, data_zero_point, patch)
            accumulate(patch, weight, bias, output)
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
            data_zero_point: T.Buffer((1,), "int32"),
            multiplier: T.Buffer((oc_,), "int32"),
            shift: T.Buffer((oc_,), "int32"),
            offset_clamp: T.Buffer((3,), "int32"),
            residual: T.Buffer(out_shape, out_dtype),
            add_params: T.Buffer((n_params,), "int32"),
            residual_add: T.Buffer(out_shape, out_dtype),
        ):
            patch = T.sblock_alloc_buffer(patch_shape, "int8")
            output = T.sblock_alloc_buffer(out_shape, "int32")
            requantize = T.sblock_alloc_buffer(out_shape, out_dtype)
            im2col(data, data_zero_point, patch)
            accumulate(patch, weight, bias, output)
            epilogue(output, multiplier, shift, offset_clamp, requantize)
            add_residual(requantize, residual, add_params, residual_add)

    return func.with_attrs({**workload_attrs(spec, NAME), RUNS_ATTR: [layout.runs, layout.full]})
