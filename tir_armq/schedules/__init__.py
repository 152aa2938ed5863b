"""Schedule rules: each inspects a PrimFunc and returns a Schedule, or None when it is not its op."""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.target import Target

from .add_default import AddDefault
from .conv_c8 import ConvC8Default
from .conv_default import ConvDefault
from .depthwise_default import DepthwiseDefault
from .mean_default import MeanDefault
from .requantize_default import RequantizeDefault

DEFAULT_RULES = (DepthwiseDefault(), ConvC8Default(), ConvDefault(), RequantizeDefault(), MeanDefault(), AddDefault())


def default_schedule(func: tirx.PrimFunc, target: Target) -> s_tir.Schedule:
    """The first default rule that accepts `func`; a clear error when none does."""
    for rule in DEFAULT_RULES:
        sch = rule.apply(func, target, False)
        if sch is not None:
            return sch
    op = func.attrs.get("tir_armq.op") if func.attrs is not None else None
    raise ValueError(f"func: no default schedule for {op or 'a PrimFunc not built by tir_armq.workloads'}")


__all__ = ["AddDefault", "ConvC8Default", "ConvDefault", "DepthwiseDefault", "MeanDefault", "RequantizeDefault", "DEFAULT_RULES", "default_schedule"]
