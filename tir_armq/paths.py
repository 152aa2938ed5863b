"""Where tir_armq keeps what set-up installs: one cache directory, overridable."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TIR_ARMQ_CACHE"


def cache_dir() -> Path:
    """Root of everything set-up installs (host venv, emulated board); `$TIR_ARMQ_CACHE` overrides."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "tir_armq")).resolve()


def board_dir() -> Path:
    """The emulated board: aarch64 sysroot, aarch64 wheels of the TVM runtime, run-time state."""
    return cache_dir() / "board"


def repo_root() -> Path:
    """The source checkout this package is imported from."""
    return Path(__file__).resolve().parent.parent
