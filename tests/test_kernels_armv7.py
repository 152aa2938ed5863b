"""The tensorized default schedules for ARMv7 (cortex-a7, VMLAL.S16), run under qemu-arm through
the C harness (no armv7 TVM runtime exists), bit-exact against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from cases import conv_cases, depthwise_cases, reference, table_cases
from runners import run_armv7

pytestmark = pytest.mark.armv7
TABLE = table_cases()
ARMV7_SETTINGS = settings(max_examples=20, deadline=None)


@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
def test_table_matches_reference(case):
    np.testing.assert_array_equal(run_armv7(case), reference(case))


@ARMV7_SETTINGS
@given(case=depthwise_cases())
def test_depthwise_matches_reference(case):
    np.testing.assert_array_equal(run_armv7(case), reference(case))


@ARMV7_SETTINGS
@given(case=conv_cases())
def test_conv_matches_reference(case):
    np.testing.assert_array_equal(run_armv7(case), reference(case))
