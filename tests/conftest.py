"""Shared fixtures: the emulated aarch64 board (TVM RPC under qemu-aarch64)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def board_key():
    """The tracker key of a running emulated board; started here (and stopped at the end) if needed."""
    from tir_armq.board import emulated

    key, started_here = emulated.ensure_started()
    yield key
    if started_here:
        emulated.stop()
