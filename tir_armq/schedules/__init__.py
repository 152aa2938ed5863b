"""Schedule rules in the style of TVM dlight, one per kernel variant: `apply(func, target, tunable)`
gives None for a PrimFunc that is not its variant's, one fixed schedule without sampling
instructions when `tunable` is False, and the design spaces MetaSchedule explores when it is True.
The kernel table (`tir_armq.kernels`) pairs each variant with its rule."""

from .conv_c2 import ConvC2
from .conv_c8 import ConvC8
from .conv_c8_im2col import ConvC8Im2col
from .conv_int16_lane import ConvInt16Lane
from .dwconv_int8_mla8 import DwconvInt8Mla8
from .dwconv_int16 import DwconvInt16
from .gavgpool import GavgpoolQ8
from .requantize import RequantizeQ8
from .softmax import SoftmaxQ8
from .vadd import VaddQ8

__all__ = ["ConvC2", "ConvC8", "ConvC8Im2col", "ConvInt16Lane", "DwconvInt16", "DwconvInt8Mla8", "GavgpoolQ8",
           "RequantizeQ8", "SoftmaxQ8", "VaddQ8"]
