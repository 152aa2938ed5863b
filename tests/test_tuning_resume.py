"""A re-run of `tune` resumes: a task with its trials stored is skipped, unless the search space has
grown since (a design space added): then only the new start points are measured."""

from __future__ import annotations

import pytest

from cases import DEPTHWISE_TABLE
from tir_armq.database import TargetDatabase
from tir_armq.schedules import depthwise_space
from tir_armq.targets import AARCH64_A72
from tir_armq.tuning import Task, start_points, tune
from tir_armq.workloads import depthwise_spec

pytestmark = pytest.mark.board
LAYER = dict(DEPTHWISE_TABLE["mnv2_3x3_s1"], output_dtype="int8")  # C = 32: every int8 design space


def test_a_design_space_added_since_the_last_run_gets_its_start_points_measured(tmp_path, monkeypatch):
    # trials=0: start points only, so no MetaSchedule search runs (what this test is not about).
    task = Task("resume.int8.int8", depthwise_spec(**LAYER).prim_func("int8"))

    def stored() -> set[str]:
        return {str(rec.trace) for rec in TargetDatabase(tmp_path, AARCH64_A72).records(task.func)}

    with monkeypatch.context() as m:  # the search space as an older version had it
        m.setattr(depthwise_space, "INT8_SPACES", depthwise_space.INT8_SPACES[:-1])
        tune([task], AARCH64_A72, tmp_path, trials=0)
        first = stored()
        assert first == {str(sch.trace) for sch in start_points(task.func, AARCH64_A72.tvm_target())}
    new_points = {str(sch.trace) for sch in start_points(task.func, AARCH64_A72.tvm_target())} - first
    assert new_points, "the design space left out of the first run has start points of its own"

    tune([task], AARCH64_A72, tmp_path, trials=0)
    second = stored()
    assert second - first == new_points

    tune([task], AARCH64_A72, tmp_path, trials=0)  # nothing new: skipped
    assert stored() == second


def test_a_negative_budget_is_refused(tmp_path):
    with pytest.raises(ValueError, match="trials"):
        tune([], AARCH64_A72, tmp_path, trials=-1)
