"""Workloads: validated layer descriptions and the TensorIR PrimFuncs built from them."""

from .conv import Conv2DSpec, conv2d_nhwc, conv_spec
from .depthwise import DepthwiseConv2DSpec, depthwise_conv2d_nhwc, depthwise_spec
from .spec import QuantConvSpec

__all__ = [
    "Conv2DSpec",
    "DepthwiseConv2DSpec",
    "QuantConvSpec",
    "conv2d_nhwc",
    "conv_spec",
    "depthwise_conv2d_nhwc",
    "depthwise_spec",
]
