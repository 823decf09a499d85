"""Faults a long tuning run meets: preemption, a failing disk, two writers on one directory.

A study of Zhang et al. (AISTATS 2021) runs for hours on shared machines and clusters that
preempt jobs with SIGTERM, fill disks and get started twice. This module gives each fault
one defined outcome (the table in BUILD_NOTES):

- `RunLock`: one writer per run directory. `OUT/.lock` holds the holder's pid, host and
  process start time; a second process is refused (`Locked`, a ValueError: one line, exit
  2); a lock whose holder is dead (same host, pid gone or reused) is taken over with a
  warning.
- `SignalGuard`: SIGTERM/SIGINT during a run. The compiled trial runs in a helper thread
  and the main thread waits for it, so a signal abandons the trial in flight at once (a
  paper-scale trial takes hours, schedulers grant ~30 s); a signal during the host's
  writes (records, checkpoint) waits until they are done. The run then raises
  `Interrupted` (a BaseException, like KeyboardInterrupt) after checkpointing its last
  complete tuner step.
- `WriteError`: a write that failed (ENOSPC, EROFS, EACCES...), as one line naming the path
  and the error; files are written whole (temporary file + rename) so a failed write never
  leaves a half file that a resume would take as valid.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

LOCK_FILE = ".lock"
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Locked(ValueError):
    """Another live process holds the run directory."""


class WriteError(OSError):
    """A file of the run could not be written; `str()` is one line naming path and error."""

    def __init__(self, path: str, error: BaseException):
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        code = getattr(error, "errno", None)
        name = f"{errno.errorcode[code]}: " if code in errno.errorcode else ""
        super().__init__(code, f"cannot write {path} ({name}{reason.splitlines()[0][:200]})")
        self.path = path

    def __str__(self) -> str:
        return self.strerror


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt
    """A run stopped by a signal; `exit_status` is 128 + the signal number."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_status = 128 + signum

    @property
    def message(self) -> str:
        return str(self.args[0])


# ----------------------------------------------------------------------------- writes


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Turns an OSError of the block into a `WriteError` naming `path`."""
    try:
        yield
    except WriteError:
        raise
    except OSError as error:
        raise WriteError(path, error) from error


def write_atomic(path: str, write: Callable[[Any], None], mode: str = "w") -> None:
    """Writes `path` whole or not at all: `write(f)` into a temporary file, fsync, rename."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with writing(path):
        try:
            with open(tmp, mode) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


# ------------------------------------------------------------------------------ lock


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to detect pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict) -> bool:
    """Whether the lock's holder (on this host) still runs."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    started = holder.get("started")
    return started is None or _start_time(pid) in (None, started)


_HELD: dict[str, int] = {}  # lock paths this process holds -> nesting depth


class RunLock:
    """The lock of one run directory (re-entrant within a process: a binary takes it before
    compiling, `experiments.run` again)."""

    def __init__(self, out_dir: str, log: Callable[[str], None] | None = None):
        self.path = os.path.abspath(os.path.join(out_dir, LOCK_FILE))
        self._log = log or logging.warning

    def acquire(self) -> RunLock:
        """Takes the lock (Locked: a live process holds it)."""
        if self.path in _HELD:
            _HELD[self.path] += 1
            return self
        me = dict(pid=os.getpid(), host=socket.gethostname(), started=_start_time(os.getpid()))
        tmp = f"{self.path}.{me['host']}.{me['pid']}"
        with writing(self.path):
            with open(tmp, "w") as f:
                json.dump(me, f)
            try:
                for _ in range(5):
                    try:
                        os.link(tmp, self.path)  # atomic: fails if a lock exists
                        _HELD[self.path] = 1
                        return self
                    except FileExistsError:
                        self._take_over_if_stale(me["host"])
            finally:
                os.remove(tmp)
        raise Locked(f"{os.path.dirname(self.path)}: could not take {LOCK_FILE}")

    def _take_over_if_stale(self, host: str) -> None:
        try:
            with open(self.path) as f:
                holder = json.load(f)
        except FileNotFoundError:
            return  # released meanwhile: try again
        except (OSError, ValueError):
            holder = {}  # unreadable: written by no live process of this module
        out = os.path.dirname(self.path)
        if holder.get("host", host) != host:
            raise Locked(
                f"--out={out} is in use by pid {holder.get('pid')} on host {holder['host']} "
                f"({LOCK_FILE}); if that process is gone, delete {self.path}"
            )
        if holder and _alive(holder):
            raise Locked(
                f"--out={out} is in use by another run (pid {holder['pid']} on {host}); "
                "wait for it to finish or use another --out"
            )
        stale = f"{self.path}.stale.{os.getpid()}"
        try:
            os.rename(self.path, stale)  # only one of several contenders wins
        except FileNotFoundError:
            return
        os.remove(stale)
        self._log(
            f"warning: took over the lock of --out={out} from pid {holder.get('pid')}, "
            "which is no longer running"
        )

    def release(self) -> None:
        depth = _HELD.get(self.path, 0)
        if depth > 1:
            _HELD[self.path] = depth - 1
            return
        if depth == 1:
            del _HELD[self.path]
            with contextlib.suppress(OSError):
                os.remove(self.path)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def release_all() -> None:
    """Drops every lock this process holds (before `os._exit`)."""
    for path in list(_HELD):
        del _HELD[path]
        with contextlib.suppress(OSError):
            os.remove(path)


# --------------------------------------------------------------------------- signals


class SignalGuard:
    """Catches SIGTERM/SIGINT while a run is in progress (main thread only; elsewhere a no-op).

    Outside `call` a signal is only noted (`pending`), and the run stops at its next safe
    point (`check`); inside `call` it raises `Interrupted` at once, abandoning the call.
    """

    def __init__(self):
        self.pending: int | None = None
        self._interruptible = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pending is None:
            self.pending = signum
        if self._interruptible:
            self._interruptible = False
            raise Interrupted(self.pending)

    def check(self) -> None:
        """Raises `Interrupted` if a signal came."""
        if self.pending is not None:
            raise Interrupted(self.pending)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in a helper thread; a signal meanwhile abandons it (`Interrupted`)."""
        self.check()
        if not self._previous:  # no handlers (not the main thread): nothing to abandon for
            return fn(*args)
        result: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            # The kernel may hand a process's signal to any thread: not to this one, so
            # that the main thread wakes for it (XLA's threads: the poll below).
            signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
            try:
                result["value"] = fn(*args)
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller
                result["error"] = error
            finally:
                done.set()

        self._interruptible = True  # before the start: `fn` may be signalled at once
        try:
            threading.Thread(target=target, daemon=True, name="jaxmbrl-trial").start()
            while not done.wait(0.05):  # a signal handled elsewhere shows here within 50 ms
                pass
        finally:
            self._interruptible = False
        if "error" in result:
            raise result["error"]
        return result["value"]
