"""A tuning run on boards behind an RPC tracker survives a board that dies mid-run: the dead board's
candidates fail, the run goes on with the other board, and the database it leaves is valid (opens,
serves a record whose schedule is bit-exact)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import tvm

from tir_armq.board import emulated
from tir_armq.database import TargetDatabase
from tir_armq.kernels import DWCONV_INT8_MLA8
from tir_armq.reference import reference_output
from tir_armq.targets import AARCH64_A72
from tir_armq.tuning import RpcBoards, Task, tune
from tir_armq.workloads import depthwise_spec

pytestmark = pytest.mark.board
KEY = "tir-armq-kill-test"  # servers of their own, so the session's board is not touched
SPEC = depthwise_spec((1, 8, 8, 32), (1, 3, 3, 32), padding="SAME", data_zero_point=-3)


def _servers() -> list[emulated.Proc]:
    return [p for p in emulated.status().processes if p.role == "server" and p.key == KEY and p.alive()]


def _kill_when_measured(work_records, victim: emulated.Proc, killed: threading.Event,
                        timeout: float = 600) -> None:
    """SIGKILL `victim` once the run has stored two measured candidates (mid-run, not before it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if work_records.exists() and len(work_records.read_text().splitlines()) >= 2:
            os.kill(victim.pid, signal.SIGKILL)
            killed.set()
            return
        time.sleep(0.5)


def test_tuning_survives_a_killed_rpc_server(tmp_path, board_key):
    port = emulated.status().tracker_port
    emulated.start(num_servers=2, key=KEY, tracker_port=port)
    victim, *rest = _servers()
    task = Task(DWCONV_INT8_MLA8.kernel_name(SPEC), DWCONV_INT8_MLA8.build(SPEC))
    work_records = tmp_path / "db" / AARCH64_A72.name / ".work" / task.name / "database_tuning_record.json"
    killed = threading.Event()
    killer = threading.Thread(target=_kill_when_measured, args=(work_records, victim, killed), daemon=True)
    killer.start()
    try:
        db = tune([task], AARCH64_A72, tmp_path / "db", trials=8, boards=RpcBoards("127.0.0.1", port, KEY))
    finally:
        for proc in _servers():
            os.kill(proc.pid, signal.SIGKILL)
    assert killed.is_set(), "the run ended before a server could be killed mid-run"

    reopened = TargetDatabase(tmp_path / "db", AARCH64_A72)  # parses every stored line
    assert len(reopened.records(task.func)) >= 2
    sch = reopened.best_schedule(task.func)
    rng = np.random.default_rng(0)
    data = rng.integers(-128, 127, SPEC.data_shape, endpoint=True, dtype=np.int8)
    weight = rng.integers(-127, 127, SPEC.weight_shape, endpoint=True, dtype=np.int8)
    bias = rng.integers(-1000, 1000, SPEC.out_channels, dtype=np.int32)
    ex = tvm.compile(sch.mod, target="llvm")  # the stored schedule, replayed for the host
    args = [tvm.runtime.tensor(a) for a in DWCONV_INT8_MLA8.arguments(SPEC, data, weight, bias)]
    ex[DWCONV_INT8_MLA8.kernel_name(SPEC)](*args)
    np.testing.assert_array_equal(args[-1].numpy(), reference_output(SPEC, data, weight, bias))
    assert db.path == reopened.path
