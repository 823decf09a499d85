"""Progress of a long compiled population step, reported from inside the program.

A paper-scale step of Zhang et al.'s PBT (40 PETS members x 1000 env steps each, one trial)
runs for hours inside one XLA program. The agent calls back to the host every k env steps
(`jax.debug.callback`, see `agents.pets.make_pets(on_progress=...)`); this tracker adds
those steps up and shows members done, env steps/s and the ETA: a rich progress bar on a
terminal, plain lines otherwise (logs, CI).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO


class Progress:
    """Env steps done in the current population step, fed by callbacks from XLA threads."""

    def __init__(
        self,
        stream: TextIO | None = None,
        log: Callable[[str], None] | None = None,
        min_interval: float = 10.0,
        bar: bool | None = None,
    ):
        """Args:
        stream: where a bar is drawn (default stderr).
        log: sink of plain lines (default: print to `stream`).
        min_interval: seconds between plain lines.
        bar: a rich bar (True), plain lines (False), or a bar only on a terminal (None).
        """
        self._stream = stream or sys.stderr
        self._log = log or (lambda line: print(line, file=self._stream, flush=True))
        self._min_interval = min_interval
        self._bar = self._stream.isatty() if bar is None else bar
        self._lock = threading.Lock()
        self._rich: Any = None
        self._task = None
        self.total = self.done = 0
        self.trial_length = 1
        self._label = ""
        self._start = self._last_line = 0.0
        self._lines = 0

    def start(self, label: str, members: int, trial_length: int) -> None:
        """A population step begins: `members` members x `trial_length` env steps."""
        with self._lock:
            self.total, self.done = members * trial_length, 0
            self.trial_length, self._label = trial_length, label
            self._start = self._last_line = time.perf_counter()
            self._lines = 0
            if self._bar:
                from rich.progress import (  # a terminal-only dependency, imported lazily
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeRemainingColumn,
                )
                from rich.progress import Progress as RichProgress

                if self._rich is None:
                    self._rich = RichProgress(
                        TextColumn("{task.description}"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TextColumn("env steps  {task.fields[rate]}"),
                        TimeRemainingColumn(),
                        transient=True,
                    )
                    self._rich.start()
                self._task = self._rich.add_task(label, total=self.total, rate="")

    def update(self, steps: Any) -> None:
        """Callback from the compiled program: `steps` env steps done by one member."""
        with self._lock:
            self.done = min(self.total, self.done + int(steps))
            now = time.perf_counter()
            rate = self.done / max(now - self._start, 1e-9)
            if self._rich is not None and self._task is not None:
                self._rich.update(self._task, completed=self.done, rate=f"{rate:,.0f}/s")
            elif now - self._last_line >= self._min_interval or (
                self.done == self.total and self._lines
            ):
                # Plain lines: one per min_interval, and the end of a step that printed any.
                self._last_line = now
                self._lines += 1
                self._log(self.line(rate))

    def line(self, rate: float) -> str:
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        members = self.done // max(self.trial_length, 1)
        return (
            f"  {self._label}: {self.done}/{self.total} env steps "
            f"({members} member-trials done), {rate:,.0f} steps/s, ETA {eta:,.0f} s"
        )

    def finish(self) -> None:
        """The population step is over (its training part included)."""
        with self._lock:
            if self._rich is not None and self._task is not None:
                self._rich.remove_task(self._task)
                self._task = None

    def close(self) -> None:
        self.finish()
        with self._lock:
            if self._rich is not None:
                self._rich.stop()
                self._rich = None
