"""Every kernel variant on every layer of the table it applies to, tensorized, on the emulated
aarch64 board (TVM RPC under qemu-aarch64), bit-exact against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from cases import conv_cases, depthwise_cases, table_cases
from runners import run_board

pytestmark = pytest.mark.board
TABLE = table_cases()
BOARD_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
def test_table_matches_reference(case, board_key):
    np.testing.assert_array_equal(run_board(case, board_key), case.expected())


@pytest.mark.slow
@BOARD_SETTINGS
@given(cases=depthwise_cases())
def test_depthwise_variants_match_reference(cases, board_key):
    for case in cases:
        np.testing.assert_array_equal(run_board(case, board_key), case.expected(), err_msg=case.name)


@pytest.mark.slow
@BOARD_SETTINGS
@given(cases=conv_cases())
def test_conv_variants_match_reference(cases, board_key):
    for case in cases:
        np.testing.assert_array_equal(run_board(case, board_key), case.expected(), err_msg=case.name)
