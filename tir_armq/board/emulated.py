"""The emulated aarch64 board as TVM RPC devices on 127.0.0.1.

A TVM RPC tracker runs on the host; each RPC server is the board's python3.11 under
`qemu-aarch64 -cpu cortex-a72`, registered with the tracker under a key ("aarch64").
All processes are detached (they outlive the process that started them); their logs and pid
files live in `$BOARD/run/`. Kernels reach the board with `run_on_board` or `connect`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from tir_armq.board.guest import Guest
from tir_armq.paths import board_dir

HOST = "127.0.0.1"
DEFAULT_KEY = "aarch64"
# One board per cache dir; $TIR_ARMQ_TRACKER_PORT moves it (e.g. two checkouts on one machine).
DEFAULT_TRACKER_PORT = int(os.environ.get("TIR_ARMQ_TRACKER_PORT", "9190"))
# qemu start-up of one server (guest `import tvm` twice: server + popen worker) is ~10-20 s.
START_TIMEOUT_S = 240.0


def _log(msg: str) -> None:
    print(f"[board] {msg}", flush=True)


# ---------------------------------------------------------------------------- process records
@dataclass(frozen=True)
class Proc:
    """One detached process this module started: tracker or RPC server."""

    role: str  # "tracker" or "server"
    pid: int
    port: int  # tracker port (for a server: the tracker it registers with)
    key: str = ""
    log: str = ""

    @property
    def name(self) -> str:
        return "tracker" if self.role == "tracker" else f"server-{self.key}-{self.pid}"

    def alive(self) -> bool:
        """True if the pid is still this process (a reused pid with another command line is not)."""
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):
            return False
        if not cmdline:
            # Right after a vfork+exec the new image's argv is not mapped yet: it reads empty.
            return True
        marker = b"tvm.exec.rpc_tracker" if self.role == "tracker" else b"tvm.exec.rpc_server"
        return marker in cmdline


def _run_dir() -> Path:
    d = board_dir() / "run"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _pid_file(proc: Proc) -> Path:
    return _run_dir() / f"{proc.name}.pid.json"


def _save(proc: Proc) -> None:
    _pid_file(proc).write_text(json.dumps(proc.__dict__))


def _load_all() -> list[Proc]:
    procs = []
    for f in sorted(_run_dir().glob("*.pid.json")):
        try:
            procs.append(Proc(**json.loads(f.read_text())))
        except (OSError, ValueError, TypeError):
            f.unlink(missing_ok=True)
    return procs


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialise start/stop between processes (e.g. two pytest runs)."""
    with open(_run_dir() / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> int:
    """Start a detached process (own session) with stdout+stderr appended to `log`."""
    with open(log, "ab") as out:
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=_run_dir(),
            start_new_session=True,
            close_fds=True,
        )
    p.returncode = 0  # detached on purpose: keep Popen.__del__ from warning about it
    return p.pid


def _kill(proc: Proc, grace_s: float = 5.0) -> None:
    """Terminate the process group of `proc` (server + its popen worker + session forks)."""
    if proc.alive():
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            deadline = time.monotonic() + grace_s
            while proc.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not proc.alive():
                break
    # reap it if it is our child (started by this very process)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(proc.pid, os.WNOHANG)
    _pid_file(proc).unlink(missing_ok=True)


# ---------------------------------------------------------------------------- tracker queries
def _port_open(port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((HOST, port)) == 0


def _tracker_summary(port: int) -> dict[str, Any] | None:
    """The tracker's summary dict, or None if no tracker answers on `port`."""
    if not _port_open(port):
        return None
    from tvm import rpc  # pylint: disable=import-outside-toplevel

    try:
        tracker = rpc.connect_tracker(HOST, port)
        try:
            return tracker.summary()
        finally:
            tracker.close()
    except (OSError, RuntimeError, ValueError):
        return None


@dataclass
class KeyStatus:
    """Servers registered with the tracker under one key."""

    total: int = 0
    free: int = 0
    pending_requests: int = 0

    @property
    def busy(self) -> int:
        return self.total - self.free


@dataclass
class BoardStatus:
    """What `status()` reports: the tracker, the processes we started, the tracker's queues."""

    tracker_port: int | None
    tracker_up: bool
    processes: list[Proc] = field(default_factory=list)
    keys: dict[str, KeyStatus] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.tracker_up

    def text(self) -> str:
        if self.tracker_port is None:
            return "board: not running"
        lines = [f"tracker 127.0.0.1:{self.tracker_port}: {'up' if self.tracker_up else 'DOWN'}"]
        for k, s in sorted(self.keys.items()):
            lines.append(f"  key {k}: {s.total} servers, {s.free} free, {s.busy} busy, {s.pending_requests} waiting")
        for p in self.processes:
            lines.append(f"  {p.name}: pid {p.pid} {'alive' if p.alive() else 'DEAD'} (log {p.log})")
        return "\n".join(lines)


def _key_status(summary: dict[str, Any]) -> dict[str, KeyStatus]:
    keys: dict[str, KeyStatus] = {}
    for conn in summary.get("server_info", []):
        # a server registers as "server:<key>"
        k = conn.get("key", "").split(":", 1)[-1]
        keys.setdefault(k, KeyStatus()).total += 1
    for k, q in summary.get("queue_info", {}).items():
        st = keys.setdefault(k, KeyStatus())
        st.free, st.pending_requests = q.get("free", 0), q.get("pending", 0)
    return keys


def status() -> BoardStatus:
    """Tracker up?, the processes started here (alive or not), servers per key (free/busy)."""
    procs = _load_all()
    trackers = [p for p in procs if p.role == "tracker"]
    if not trackers:
        return BoardStatus(tracker_port=None, tracker_up=False, processes=procs)
    port = trackers[0].port
    summary = _tracker_summary(port) if trackers[0].alive() else None
    keys = _key_status(summary) if summary is not None else {}
    return BoardStatus(tracker_port=port, tracker_up=summary is not None, processes=procs, keys=keys)


# ---------------------------------------------------------------------------- start / stop
def _start_tracker(port: int) -> Proc:
    if _port_open(port):
        raise RuntimeError(
            f"board: port {port} is taken by a process this board did not start (another cache dir's "
            f"board?); stop it or pick another port (--port / $TIR_ARMQ_TRACKER_PORT)"
        )
    log = _run_dir() / "tracker.log"
    argv = [sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", HOST, "--port", str(port),
            "--port-end", str(port + 1)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = Proc("tracker", _spawn(argv, log, env), port, log=str(log))
    _save(proc)
    deadline = time.monotonic() + 60
    while _tracker_summary(port) is None:
        if not proc.alive():
            _pid_file(proc).unlink(missing_ok=True)
            raise RuntimeError(f"board: RPC tracker exited at start-up (port {port} taken?); see {log}")
        if time.monotonic() > deadline:
            _kill(proc)
            raise RuntimeError(f"board: RPC tracker did not answer on port {port} within 60 s; see {log}")
        time.sleep(0.2)
    return proc


SERVER_PORT_SPAN = 10  # ports each RPC server may bind in (the first free one)


def _server_ports(tracker_port: int, index: int) -> tuple[int, int]:
    """The port range of the board's `index`-th server. Servers started together must not share
    one: each binds the first free port of its range, and two that bind the same port before
    either listens both succeed, then one fails to listen (EADDRINUSE) and dies at start-up."""
    first = tracker_port + 100 + SERVER_PORT_SPAN * index
    return first, first + SERVER_PORT_SPAN


def _start_server(guest: Guest, key: str, tracker_port: int, ports: tuple[int, int]) -> Proc:
    argv = guest.qemu_argv() + [
        "-m", "tvm.exec.rpc_server", "--tracker", f"{HOST}:{tracker_port}", "--key", key,
        "--host", HOST, "--port", str(ports[0]), "--port-end", str(ports[1]),
    ]
    tmp_log = _run_dir() / f"server-{key}-starting.log"
    pid = _spawn(argv, tmp_log, guest.env())
    log = _run_dir() / f"server-{key}-{pid}.log"
    tmp_log.replace(log)  # the open file descriptor follows the rename
    proc = Proc("server", pid, tracker_port, key=key, log=str(log))
    _save(proc)
    return proc


def _wait_registered(key: str, port: int, num: int, servers: list[Proc], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        summary = _tracker_summary(port)
        st = _key_status(summary).get(key, KeyStatus()) if summary else KeyStatus()
        if st.total >= num:
            return
        dead = [p for p in servers if not p.alive()]
        if dead:
            tail = Path(dead[0].log).read_text(errors="replace")[-2000:] if Path(dead[0].log).exists() else ""
            raise RuntimeError(f"board: RPC server pid {dead[0].pid} exited at start-up; {dead[0].log}:\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"board: only {st.total} of {num} RPC servers registered for key {key!r} within "
                f"{timeout:.0f} s; see logs in {_run_dir()}"
            )
        time.sleep(0.5)


def start(
    num_servers: int = 1,
    key: str = DEFAULT_KEY,
    tracker_port: int = DEFAULT_TRACKER_PORT,
    timeout: float = START_TIMEOUT_S,
) -> bool:
    """Start the tracker and `num_servers` emulated RPC servers for `key`; wait until all registered.

    Idempotent: a running tracker is reused, and only missing servers for `key` are started.
    Waits until the tracker lists `num_servers` servers for `key` (free or busy with a session).
    Returns True if this call started the board (the tracker), False if it was already running.
    """
    guest = Guest.default()
    guest.check_installed()
    guest.install_launchers()
    with _lock():
        procs = _load_all()
        trackers = [p for p in procs if p.role == "tracker" and p.alive()]
        if trackers and trackers[0].port != tracker_port:
            raise RuntimeError(
                f"board: already running with its tracker on port {trackers[0].port}; "
                f"`tir-armq board stop` first to use port {tracker_port}"
            )
        if trackers and _tracker_summary(tracker_port) is None:
            _kill(trackers[0])  # alive but not answering: restart it
            trackers = []
        if not trackers:
            for p in procs:  # stale servers registered with a dead tracker
                _kill(p)
            for f in _run_dir().glob("*.log"):  # logs of earlier runs
                f.unlink(missing_ok=True)
            t0 = time.monotonic()
            _start_tracker(tracker_port)
            _log(f"tracker on {HOST}:{tracker_port} ... up ({time.monotonic() - t0:.1f} s)")
            procs = []
        servers = [p for p in procs if p.role == "server" and p.key == key and p.alive()]
        for p in procs:
            if p.role == "server" and not p.alive():
                _pid_file(p).unlink(missing_ok=True)
        missing = num_servers - len(servers)
        if missing <= 0 and trackers:
            _log(f"already running: tracker {HOST}:{tracker_port}, {len(servers)} server(s) for key {key!r}")
            _wait_registered(key, tracker_port, len(servers), servers, timeout)
            return False
        started_tracker = not trackers
        t0 = time.monotonic()
        running = sum(p.role == "server" and p.alive() for p in procs)
        new = [_start_server(guest, key, tracker_port, _server_ports(tracker_port, running + i))
               for i in range(max(missing, 0))]
        try:
            _wait_registered(key, tracker_port, num_servers, servers + new, timeout)
        except RuntimeError:
            for p in new:
                _kill(p)
            raise
        _log(f"{len(new)} RPC server(s) for key {key!r} (qemu-aarch64 -cpu {guest.qemu_argv()[2]}) "
             f"... registered ({time.monotonic() - t0:.1f} s)")
        return started_tracker


def stop() -> list[Proc]:
    """Kill every process `start` launched (servers first, then the tracker); returns them."""
    with _lock():
        procs = _load_all()
        for p in sorted(procs, key=lambda p: p.role == "tracker"):
            _kill(p)
    return procs


def ensure_started(
    num_servers: int = 1, key: str = DEFAULT_KEY, tracker_port: int = DEFAULT_TRACKER_PORT
) -> tuple[str, bool]:
    """For test fixtures: start the board if needed; returns (key, started_here)."""
    return key, start(num_servers=num_servers, key=key, tracker_port=tracker_port)


# ---------------------------------------------------------------------------- sessions and runs
def connect(key: str = DEFAULT_KEY, tracker_port: int = DEFAULT_TRACKER_PORT, timeout: float = 600.0):
    """An RPC session on one free board server for `key` (blocks while all are busy).

    `timeout` is the session's lifetime in seconds: the server ends the session after it.
    """
    from tvm import rpc  # pylint: disable=import-outside-toplevel

    if not _port_open(tracker_port):
        raise RuntimeError(f"board: no RPC tracker on {HOST}:{tracker_port}; run `tir-armq board start`")
    return rpc.connect_tracker(HOST, tracker_port).request(key, priority=1, session_timeout=timeout)


def _export(lib: Any, out_dir: Path) -> Path:
    """Cross-compile an Executable/Module into an aarch64 .so (or pass through a .so path)."""
    if isinstance(lib, (str, Path)):
        return Path(lib)
    from tvm.support import cc  # pylint: disable=import-outside-toplevel

    from tir_armq.targets import AARCH64_A72  # pylint: disable=import-outside-toplevel

    path = out_dir / "lib.so"
    lib.export_library(str(path), fcompile=cc.cross_compiler(AARCH64_A72.cross_cc))
    return path


KBIG = 1  # TVM's ThreadGroup::AffinityMode kBig


def _load_remote(lib: Any, tmp: Path, key: str, tracker_port: int, timeout: float, threads: int = 1):
    """Export `lib` into `tmp`, upload it to a board of `key`, load it there: (module, device).
    Parallel loops run on `threads` threads (the pool otherwise sizes itself by the host's cores)."""
    so = _export(lib, tmp)
    remote = connect(key, tracker_port, timeout)
    remote.get_function("runtime.config_threadpool")(KBIG, threads)
    remote.upload(str(so))
    return remote.load_module(so.name), remote.cpu(0)


def run_vm_on_board(
    executable: Any,
    inputs: Sequence[np.ndarray],
    *,
    func_name: str = "main",
    key: str = DEFAULT_KEY,
    tracker_port: int = DEFAULT_TRACKER_PORT,
    timeout: float = 600.0,
    threads: int = 1,
) -> np.ndarray:
    """Run a Relax VM executable (an aarch64 build, or the path of its exported .so) on the board:
    `func_name` on `inputs`, the output read back."""
    import tvm  # pylint: disable=import-outside-toplevel
    from tvm import relax  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory(prefix="tir_armq_") as tmp:
        rlib, dev = _load_remote(executable, Path(tmp), key, tracker_port, timeout, threads)
        vm = relax.VirtualMachine(rlib, dev)
        args = [tvm.runtime.tensor(np.ascontiguousarray(a), device=dev) for a in inputs]
        return vm[func_name](*args).numpy()


def run_on_board(
    executable_or_module: Any,
    func_name: str,
    arrays: Sequence[np.ndarray],
    *,
    key: str = DEFAULT_KEY,
    tracker_port: int = DEFAULT_TRACKER_PORT,
    timeout: float = 600.0,
    threads: int = 1,
) -> list[np.ndarray]:
    """Run `func_name` of an aarch64 build on the board; returns every array read back after the call.

    `executable_or_module`: a `tvm.runtime.Executable` from `tvm.compile(..., target=AARCH64_A72.tvm_target())`,
    a `tvm.runtime.Module`, or the path of an aarch64 .so already exported. PrimFuncs write their
    outputs in place (destination-passing style), so outputs come back at their argument positions.
    Parallel loops run on `threads` threads of the board's pool.
    """
    import tvm  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory(prefix="tir_armq_") as tmp:
        rlib, dev = _load_remote(executable_or_module, Path(tmp), key, tracker_port, timeout, threads)
        args = [tvm.runtime.tensor(np.ascontiguousarray(a), device=dev) for a in arrays]
        rlib[func_name](*args)
        return [t.numpy() for t in args]
