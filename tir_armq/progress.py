"""The console of long runs: one progress line, and everything else (MetaSchedule's logs, TVM's C++
warnings, worker processes' output) in a log file.

MetaSchedule prints through Python's logging to stdout, its C++ side (`Trace replay failed`, one line
per rejected mutation) straight to file descriptor 2, and its builder and runner workers inherit
both descriptors. Only a redirect of the descriptors themselves catches all of it, so
`output_to(log)` points fd 1 and 2 at the log for the run and gives back a stream on the terminal
for the progress line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[TextIO]:
    """Inside: fd 1 and 2 append to `log`; yields a stream on the former stderr."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    console = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            console.close()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """One line for a run of tasks: tasks done, the current task's trials, its best time, elapsed, ETA.

    On a terminal the line is redrawn in place; elsewhere (CI logs, pipes) one line per finished task.
    The ETA assumes every task left costs what the finished ones cost on average per trial.
    """

    def __init__(self, tasks: int, stream: TextIO, label: str = "tune") -> None:
        self.tasks, self.stream, self.label = tasks, stream, label
        self.start = time.monotonic()
        self.done = 0
        self.name, self.trials, self.budget, self.best = "", 0, 0, None
        self.trials_done = 0  # over finished tasks
        self.budgets_done = 0
        self.tty = stream.isatty()

    def task(self, index: int, name: str, budget: int) -> None:
        """Task `index` (1-based) starts, with about `budget` candidates to measure."""
        self.name, self.trials, self.budget, self.best = name, 0, max(budget, 1), None
        self.done = index - 1
        self._draw()

    def measured(self, seconds: list[float | None]) -> None:
        """Candidates measured (None: failed), their times in seconds."""
        self.trials += len(seconds)
        good = [s for s in seconds if s]
        if good:
            self.best = min([*good, *([self.best] if self.best else [])])
        self._draw()

    def task_done(self, note: str) -> None:
        self.done += 1
        self.trials_done += self.trials
        self.budgets_done += self.budget
        self._draw(final=note)

    def note(self, text: str) -> None:
        """A line of its own (a failure, a skipped task), above the progress line."""
        self._clear()
        print(f"[{self.label}] {text}", file=self.stream, flush=True)

    def _eta(self, elapsed: float) -> str:
        fraction = min((self.done + min(self.trials / self.budget, 1.0)) / self.tasks, 1.0)
        return _duration(elapsed / fraction - elapsed) if fraction > 0 else "?"

    def _line(self) -> str:
        elapsed = time.monotonic() - self.start
        best = f"{self.best * 1e6:.1f} us" if self.best else "-"
        return (f"[{self.label}] tasks {self.done}/{self.tasks} | {self.name} | trials {self.trials}/{self.budget}"
                f" | best {best} | {_duration(elapsed)} elapsed | ETA {self._eta(elapsed)}")

    def _clear(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")

    def _draw(self, final: str | None = None) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self._line() + (f" | {final}\n" if final else ""))
            self.stream.flush()
        elif final:
            print(self._line() + f" | {final}", file=self.stream, flush=True)
