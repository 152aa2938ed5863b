"""Both workloads on the host: the unscheduled PrimFunc and the default schedule (the same
schedule as on ARM, with the portable MAC implementations) against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from cases import conv_cases, depthwise_cases, reference, table_cases
from runners import run_host

TABLE = table_cases()


@pytest.mark.parametrize("case", [c for _, c in TABLE], ids=[i for i, _ in TABLE])
@pytest.mark.parametrize("scheduled", [False, True], ids=["unscheduled", "default_schedule"])
def test_table_matches_reference(case, scheduled):
    np.testing.assert_array_equal(run_host(case, scheduled), reference(case))


@settings(max_examples=40, deadline=None)
@given(case=depthwise_cases())
def test_depthwise_default_schedule_matches_reference(case):
    np.testing.assert_array_equal(run_host(case), reference(case))


@settings(max_examples=40, deadline=None)
@given(case=conv_cases())
def test_conv_default_schedule_matches_reference(case):
    np.testing.assert_array_equal(run_host(case), reference(case))
