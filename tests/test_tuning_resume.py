"""A re-run of `tune` resumes: a task with its trials stored is skipped, unless the search space has
grown since (a design space added): then only the new start points are measured."""

from __future__ import annotations

import pytest
import tvm

from cases import DEPTHWISE_TABLE
from tir_armq.database import TargetDatabase
from tir_armq.kernels import DWCONV_INT8_MLA8
from tir_armq.schedules import dwconv_int8_mla8
from tir_armq.targets import AARCH64_A72
from tir_armq.tuning import Task, start_points, tune
from tir_armq.workloads import depthwise_spec

pytestmark = pytest.mark.board
LAYER = dict(DEPTHWISE_TABLE["mnv2_3x3_s1"], output_dtype="int8")  # C = 32: every design space
SPEC = depthwise_spec(**LAYER)


def _task(spec) -> Task:
    return Task(DWCONV_INT8_MLA8.kernel_name(spec), DWCONV_INT8_MLA8.build(spec))


def _padded_with_a_constant(func):
    """`func` as an earlier version of its workload had it: the padding a constant of its body (5,
    the zero point of the layer it was built for), not the `data_zero_point` operand; the same
    arguments and attributes, another body."""
    text, operand = func.script(), 'T.Cast("int8", data_zero_point[0])'
    reads = "T.reads(data[v_b, v_y - 1, v_x - 1, v_c], data_zero_point[0])"
    assert text.count(operand) == 1 and text.count(reads) == 1, "data_pad changed: update this test"
    text = text.replace(operand, "T.int8(5)").replace(reads, "T.reads(data[v_b, v_y - 1, v_x - 1, v_c])")
    return tvm.script.parse(text)


@pytest.mark.slow  # ~3.5 min on 2 cores: keeps the default run under 30 minutes
def test_a_design_space_added_since_the_last_run_gets_its_start_points_measured(tmp_path, monkeypatch):
    # trials=0: start points only, so no MetaSchedule search runs (what this test is not about).
    task = _task(SPEC)

    def stored() -> set[str]:
        return {str(rec.trace) for rec in TargetDatabase(tmp_path, AARCH64_A72).records(task.func)}

    with monkeypatch.context() as m:  # the search space as an older version had it
        m.setattr(dwconv_int8_mla8, "INT8_SPACES", dwconv_int8_mla8.INT8_SPACES[:-1])
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


def test_a_changed_workload_starts_from_the_records_of_its_earlier_version(tmp_path, monkeypatch):
    """The layer's PrimFunc changed (here: its padding was a constant of its body) since it was
    tuned: its best earlier records are replayed on the new one and measured again; another layer's
    records are not taken."""
    from tir_armq import tuning

    now = _task(SPEC)
    before = _padded_with_a_constant(now.func)
    other = DWCONV_INT8_MLA8.build(depthwise_spec(**dict(LAYER, data_shape=(1, 8, 8, 16),
                                                         weight_shape=(1, 3, 3, 16))))
    db = TargetDatabase(tmp_path, AARCH64_A72, create=True)
    tiles = {}
    for func in (before, other):
        for tile in (1, 2):  # the first design space with 1 and 2 pixels per tile (not its start point)
            sch = tuning.schedule_of_copy(func)
            trace = DWCONV_INT8_MLA8.rule.design_spaces(sch.copy(), AARCH64_A72.tvm_target())[0].trace
            tile_inst = [i for i in trace.insts if i.kind.name == "SamplePerfectTile"][1]
            trace.with_decision(tile_inst, [8 // tile, tile], remove_postproc=True).apply_to_schedule(
                sch, remove_postproc=True)
            db.commit(func, sch, 1e-6 * tile)
            tiles.setdefault(func.same_as(before), []).append(str(sch.trace))
    monkeypatch.setattr(tuning, "start_points", lambda func, target: [])  # the carried records only
    tune([now], AARCH64_A72, tmp_path, trials=0)
    carried = TargetDatabase(tmp_path, AARCH64_A72).records(now.func)
    assert {str(rec.trace) for rec in carried} == set(tiles[True])
    assert all(rec.run_secs[0] > 2e-6 for rec in carried), "measured again, not the earlier times"
    assert TargetDatabase(tmp_path, AARCH64_A72).count(before) == 2  # the earlier version's are kept
