"""The target-aware database: records never cross targets, bad files are reported and untouched."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from tvm import s_tir

from tir_armq.database import RECORDS_FILE, WORKLOADS_FILE, DatabaseError, TargetDatabase
from tir_armq.kernels import DWCONV_INT8_MLA8, DWCONV_INT16, design_spaces
from tir_armq.targets import AARCH64_A53, AARCH64_A72, ARMV7_A7
from tir_armq.workloads import depthwise_spec

SPEC = depthwise_spec((1, 8, 8, 16), (1, 3, 3, 16), padding="SAME")
FUNC = DWCONV_INT8_MLA8.build(SPEC)
# The same layer on the other depthwise variant: another workload.
INT16_FUNC = DWCONV_INT16.build(SPEC)
SMALLER = DWCONV_INT8_MLA8.build(depthwise_spec((1, 6, 6, 16), (1, 3, 3, 16), padding="SAME"))


def _spaces(func, target=AARCH64_A72):
    """The design spaces of `func`'s kernel variant."""
    return design_spaces(func, target.tvm_target())


def _schedule(target):
    return _spaces(FUNC, target)[0]


def _db_with_record(root, target=AARCH64_A72, secs=1e-5):
    db = TargetDatabase(root, target, create=True)
    db.commit(FUNC, _schedule(target), secs)
    return db


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_record_round_trips_for_its_target(tmp_path):
    _db_with_record(tmp_path, secs=2e-5)
    db = TargetDatabase(tmp_path, AARCH64_A72)
    assert db.best_seconds(FUNC) == pytest.approx(2e-5)
    sch = db.best_schedule(FUNC)
    assert isinstance(sch, s_tir.Schedule)
    assert "conv_init" in sch.mod.script()  # the replayed trace, not the bare workload


def test_other_target_folder_has_nothing(tmp_path):
    _db_with_record(tmp_path, AARCH64_A72)
    with pytest.raises(DatabaseError, match="no tuning database"):
        TargetDatabase(tmp_path, ARMV7_A7)


def test_folder_of_another_target_is_refused(tmp_path):
    _db_with_record(tmp_path, AARCH64_A72)
    # A user copies the A72 folder to where the A53 records belong.
    shutil.copytree(tmp_path / AARCH64_A72.name, tmp_path / AARCH64_A53.name)
    with pytest.raises(DatabaseError, match="refused"):
        TargetDatabase(tmp_path, AARCH64_A53)


def test_foreign_record_inside_a_folder_is_never_served(tmp_path):
    a72 = _db_with_record(tmp_path / "a", AARCH64_A72)
    a53 = TargetDatabase(tmp_path / "b", AARCH64_A53, create=True)
    # Append the A72 record's line to the A53 file, as a careless merge would.
    with (a53.path / WORKLOADS_FILE).open("a") as f:
        f.write((a72.path / WORKLOADS_FILE).read_text())
    with (a53.path / RECORDS_FILE).open("a") as f:
        f.write((a72.path / RECORDS_FILE).read_text())
    reopened = TargetDatabase(tmp_path / "b", AARCH64_A53)
    assert reopened.records(FUNC) == []
    assert reopened.best_schedule(FUNC) is None


def test_records_are_kept_apart_per_thread_count(tmp_path):
    four = AARCH64_A72.with_threads(4)
    assert four.tvm_target().attrs["num-cores"] == 4 and AARCH64_A72.tvm_target().attrs["num-cores"] == 1
    _db_with_record(tmp_path, AARCH64_A72)
    with pytest.raises(DatabaseError, match="no tuning database"):
        TargetDatabase(tmp_path, four)
    # A one-thread record copied into the four-thread folder is never served there.
    TargetDatabase(tmp_path, four, create=True)
    for name in (WORKLOADS_FILE, RECORDS_FILE):
        shutil.copy(tmp_path / AARCH64_A72.db_name / name, tmp_path / four.db_name / name)
    assert TargetDatabase(tmp_path, four).records(FUNC) == []
    with pytest.raises(ValueError, match="threads"):
        AARCH64_A72.with_threads(0)


def test_records_made_before_thread_counts_serve_one_thread(tmp_path):
    """Records of the time every target said num-cores 4 (all kernels on one thread, the shipped
    ones among them) still serve the one-thread target, and only it."""
    db = _db_with_record(tmp_path)
    for name in ("target.json", RECORDS_FILE):
        path = db.path / name
        path.write_text(path.read_text().replace('"num-cores":1', '"num-cores":4')
                        .replace('\\"num-cores\\":1', '\\"num-cores\\":4'))
    assert '"num-cores\\":4' in (db.path / "target.json").read_text()
    assert TargetDatabase(tmp_path, AARCH64_A72).best_seconds(FUNC) == pytest.approx(1e-5)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_file_is_named_and_left_untouched(tmp_path, damage):
    db = _db_with_record(tmp_path)
    records = db.path / RECORDS_FILE
    text = records.read_text()
    records.write_text(text[: len(text) // 2] if damage == "truncate" else text + "{not json\n")
    before = _digest(records)
    with pytest.raises(DatabaseError, match=RECORDS_FILE):
        TargetDatabase(tmp_path, AARCH64_A72)
    assert _digest(records) == before


def test_merge_keeps_existing_records_and_skips_foreign_ones(tmp_path):
    db = _db_with_record(tmp_path / "main", secs=3e-5)
    other_a72 = _db_with_record(tmp_path / "run1", AARCH64_A72, secs=1e-5)
    other_a53 = _db_with_record(tmp_path / "run2", AARCH64_A53, secs=5e-6)
    assert db.merge_from(other_a72.db) == 1
    assert db.merge_from(other_a53.db) == 0
    reopened = TargetDatabase(tmp_path / "main", AARCH64_A72)
    assert [float(r.run_secs[0]) for r in reopened.records(FUNC)] == pytest.approx([1e-5, 3e-5])


def test_merging_a_run_twice_adds_nothing(tmp_path):
    run = _db_with_record(tmp_path / "run")
    shipped = TargetDatabase(tmp_path / "shipped", AARCH64_A72, create=True)
    assert shipped.merge_from(run.db) == 1
    before = (shipped.path / RECORDS_FILE).read_text()
    assert shipped.merge_from(run.db) == 0
    assert (shipped.path / RECORDS_FILE).read_text() == before
    assert len(TargetDatabase(tmp_path / "shipped", AARCH64_A72).records(FUNC)) == 1


def test_merge_for_a_workload_keeps_only_records_that_replay_on_it(tmp_path):
    """A tuning run's records go under the tuned function; one scheduled from another module (what
    a search replay that rewrote its module in place leaves behind) is not stored."""
    other = INT16_FUNC
    run = TargetDatabase(tmp_path / "run", AARCH64_A72, create=True)
    run.commit(FUNC, _schedule(AARCH64_A72), 2e-5)
    run.commit(other, _spaces(other)[0], 1e-5)
    db = TargetDatabase(tmp_path / "main", AARCH64_A72, create=True)
    assert db.merge_from(run.db, func=FUNC) == 1
    assert db.count(FUNC) == 1 and db.count(other) == 0
    assert db.best_schedule(FUNC) is not None


def test_records_are_added_without_replaying_the_stored_ones(tmp_path):
    """Storing records touches no stored record: one that no longer replays on its workload (what a
    changed intrinsic or space leaves behind, and what makes MetaSchedule's own JSONDatabase refuse
    the whole folder) does not stop a tuning run from adding records, nor lookups; the lines written
    are MetaSchedule's, which reads them back."""
    other = INT16_FUNC
    db = _db_with_record(tmp_path, secs=3e-5)
    db.commit(other, _spaces(other)[0], 1e-5)
    lines = (tmp_path / "aarch64" / RECORDS_FILE).read_text().splitlines()
    stale = lines[1].replace("[1,", "[0,", 1)  # the int16 schedule filed under the int8 workload
    (tmp_path / "aarch64" / RECORDS_FILE).write_text("\n".join([lines[0], stale]) + "\n")
    db = TargetDatabase(tmp_path, AARCH64_A72)
    with pytest.raises(DatabaseError, match="could not read"):
        db.db  # noqa: B018 - MetaSchedule's view replays every record
    run = TargetDatabase(tmp_path / "run", AARCH64_A72, create=True)
    run.commit(FUNC, _schedule(AARCH64_A72), 2e-5)
    assert db.merge_from(run.db, func=FUNC) == 1
    db.commit(FUNC, _schedule(AARCH64_A72), 1e-5)
    assert TargetDatabase(tmp_path, AARCH64_A72).count(FUNC) == 4
    with pytest.warns(UserWarning, match="no longer replays"):
        assert [float(r.run_secs[0]) for r in db.records(FUNC)] == pytest.approx([1e-5, 2e-5, 3e-5])


def test_measured_again_records_get_their_new_times_in_place(tmp_path):
    """Records re-measured (after the cost method changed) keep their line with the new time; one
    that no longer runs is dropped; the other workloads' records are untouched."""
    other = SMALLER
    db = _db_with_record(tmp_path, secs=3e-5)
    db.commit(other, _spaces(other)[0], 1e-5)
    fused = _spaces(FUNC)[-1]
    db.commit(FUNC, fused, 2e-5)
    first, second = (str(r.trace) for r in db.records(FUNC))
    assert db.update_run_secs(FUNC, {first: [5e-5], second: None}) == (1, 1)
    reopened = TargetDatabase(tmp_path, AARCH64_A72)
    assert [float(r.run_secs[0]) for r in reopened.records(FUNC)] == pytest.approx([5e-5])
    assert reopened.best_seconds(other) == pytest.approx(1e-5)
    assert len(reopened.db.get_all_tuning_records()) == 2


def test_two_writers_on_one_folder_keep_every_record(tmp_path):
    """Two runs sharing a folder (each opened before the other wrote) file every record under its
    own workload: a writer re-reads the files under the lock before appending."""
    other = SMALLER
    a = TargetDatabase(tmp_path, AARCH64_A72, create=True)
    b = TargetDatabase(tmp_path, AARCH64_A72)
    b.commit(other, _spaces(other)[0], 1e-5)
    a.commit(FUNC, _schedule(AARCH64_A72), 2e-5)
    b.commit(FUNC, _schedule(AARCH64_A72), 3e-5)
    reopened = TargetDatabase(tmp_path, AARCH64_A72)
    assert reopened.count(FUNC) == 2 and reopened.count(other) == 1
    assert len((tmp_path / "aarch64" / WORKLOADS_FILE).read_text().splitlines()) == 2


def test_prune_keeps_only_the_given_workloads(tmp_path):
    """Records of a workload that no longer exists are dropped; the others stay usable, and
    MetaSchedule still reads the rewritten files."""
    other = SMALLER
    db = _db_with_record(tmp_path, secs=3e-5)
    db.commit(FUNC, _schedule(AARCH64_A72), 2e-5)
    db.commit(other, _spaces(other)[0], 1e-5)
    assert db.prune([FUNC]) == (2, 1)
    reopened = TargetDatabase(tmp_path, AARCH64_A72)
    assert reopened.count(FUNC) == 2 and reopened.count(other) == 0
    assert reopened.best_seconds(FUNC) == pytest.approx(2e-5)
    assert len(reopened.db.get_all_tuning_records()) == 2
    assert reopened.prune([FUNC]) == (2, 0)
