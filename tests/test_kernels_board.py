"""The tensorized default schedules on the emulated aarch64 board (TVM RPC under qemu-aarch64),
bit-exact against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from cases import conv_cases, depthwise_cases, reference, table_cases
from runners import run_board

pytestmark = pytest.mark.board
TABLE = table_cases()
BOARD_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
def test_table_matches_reference(case, board_key):
    np.testing.assert_array_equal(run_board(case, board_key), reference(case))


@BOARD_SETTINGS
@given(case=depthwise_cases())
def test_depthwise_matches_reference(case, board_key):
    np.testing.assert_array_equal(run_board(case, board_key), reference(case))


@BOARD_SETTINGS
@given(case=conv_cases())
def test_conv_matches_reference(case, board_key):
    np.testing.assert_array_equal(run_board(case, board_key), reference(case))
