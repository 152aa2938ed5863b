"""Every kernel variant on every layer of the table it applies to, tensorized for ARMv7
(cortex-a7), run under qemu-arm through the C harness, bit-exact against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from cases import conv_cases, depthwise_cases, table_cases
from runners import run_armv7

pytestmark = pytest.mark.armv7
TABLE = table_cases()
ARMV7_SETTINGS = settings(max_examples=12, deadline=None)


@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
def test_table_matches_reference(case):
    np.testing.assert_array_equal(run_armv7(case), case.expected())


@pytest.mark.slow
@ARMV7_SETTINGS
@given(cases=depthwise_cases())
def test_depthwise_variants_match_reference(cases):
    for case in cases:
        np.testing.assert_array_equal(run_armv7(case), case.expected(), err_msg=case.name)


@pytest.mark.slow
@ARMV7_SETTINGS
@given(cases=conv_cases())
def test_conv_variants_match_reference(cases):
    for case in cases:
        np.testing.assert_array_equal(run_armv7(case), case.expected(), err_msg=case.name)
