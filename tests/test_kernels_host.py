"""Every kernel variant on every layer of the table it applies to, on the host: the unscheduled
PrimFunc and the variant's fixed schedule (the same schedule as on ARM, with the portable MAC
implementations) against the numpy reference of the layer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from cases import conv_cases, depthwise_cases, table_cases
from runners import run_host

TABLE = table_cases()


@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
@pytest.mark.parametrize("scheduled", [False, True], ids=["unscheduled", "fixed_schedule"])
def test_table_matches_reference(case, scheduled):
    np.testing.assert_array_equal(run_host(case, scheduled), case.expected())


@settings(max_examples=40, deadline=None)
@given(cases=depthwise_cases())
def test_depthwise_variants_match_reference(cases):
    for case in cases:
        np.testing.assert_array_equal(run_host(case), case.expected(), err_msg=case.name)


@settings(max_examples=40, deadline=None)
@given(cases=conv_cases())
def test_conv_variants_match_reference(cases):
    for case in cases:
        np.testing.assert_array_equal(run_host(case), case.expected(), err_msg=case.name)
