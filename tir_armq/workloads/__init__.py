"""Workloads: validated layer descriptions, and the TensorIR PrimFuncs of each kernel variant.

`depthwise_spec` / `conv_spec` describe a layer; `dwconv_int8_mla8.py`, `dwconv_int16.py`,
`conv_c8.py`, `conv_c8_im2col.py` and `conv_int16_lane.py` build the PrimFunc of one variant each
(the kernel table, `tir_armq.kernels`, says which applies and prepares its constant operands);
`add.py`, `mean.py` and `requantize.py` the other ops.
"""

from .conv import Conv2DSpec, conv_spec
from .depthwise import DepthwiseConv2DSpec, depthwise_spec
from .naming import kernel_name
from .spec import QuantConvSpec

__all__ = ["Conv2DSpec", "DepthwiseConv2DSpec", "QuantConvSpec", "conv_spec", "depthwise_spec", "kernel_name"]
