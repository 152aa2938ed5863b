"""Deterministic cost of code on the emulated board: executed-instruction counts from a qemu plugin.

Under qemu, wall time says nothing about a real Cortex-A53/A72; the executed instruction stream is
exact and repeatable. `insncount.c` is a qemu TCG plugin counting instructions for a whole run, for
regions the guest marks (`os.lseek(-1, 0x1C0DE001, 0)` ... `os.lseek(-1, 0x1C0DE002, 0)`) and per
translation block; `plugin.py` builds it and runs guest programs under it (read its docstring
for the two things a deterministic guest python needs).
"""

from tir_armq.measure.plugin import (
    MARK_START,
    MARK_STOP,
    Block,
    Counts,
    build_plugin,
    parse_counts,
    plugin_path,
    run_counted,
)

__all__ = [
    "MARK_START",
    "MARK_STOP",
    "Block",
    "Counts",
    "build_plugin",
    "parse_counts",
    "plugin_path",
    "run_counted",
]
