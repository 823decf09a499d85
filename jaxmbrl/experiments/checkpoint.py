"""Checkpoints of a whole tuning run with orbax-checkpoint.

A checkpoint holds the run state pytree (population with agent, optimiser and replay
states, hyperparameters, tuner state incl. PBT-BT's archive, RNG keys, step counters) and
JSON metadata (the number of `members.jsonl` lines written, the best member so far, the
per-step history). Orbax writes each step into a temporary directory and renames it when
complete, so a crash mid-save leaves the previous checkpoints intact; the last K are kept.
A newest checkpoint that cannot be read (truncated, corrupted) is skipped with a warning and
the one before it is used; a directory whose checkpoints are all unreadable (another version,
damage) is refused rather than restarted, which would discard its records. A save that fails
(full or read-only disk) removes its partial step and raises `faults.WriteError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxmbrl.experiments import faults


def _os_error(error: BaseException) -> BaseException:
    """The OSError behind an orbax/tensorstore error, if any (for a one-line message)."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        # tensorstore raises ValueError("... [os_error_code='28']") for a full disk
        code = re.search(r"os_error_code='(\d+)'", str(seen))
        if code:
            return OSError(int(code[1]), os.strerror(int(code[1])))
        seen = seen.__cause__ or seen.__context__
    return error


@contextlib.contextmanager
def _quiet(logger: str = "absl"):
    """Mutes orbax's own traceback of a failed save (it becomes one WriteError line)."""
    log = logging.getLogger(logger)
    disabled, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = disabled


class Checkpointer:
    """Saves and restores (run state, metadata) pairs under `directory`."""

    def __init__(self, directory: str, keep: int, log: Callable[[str], None] | None = None):
        if keep < 1:
            raise ValueError(f"keep={keep} must be >= 1")
        self._log = log or logging.warning
        self.directory = os.path.abspath(directory)
        with faults.writing(self.directory):
            os.makedirs(self.directory, exist_ok=True)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep,
                create=True,
                enable_async_checkpointing=False,
                cleanup_tmp_directories=True,  # what a killed or failed save left
            ),
        )

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Saves step `step` whole, or raises `faults.WriteError` leaving the others intact."""
        try:
            with _quiet():
                self._manager.save(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                    ),
                    force=True,
                )
                self._manager.wait_until_finished()
        except Exception as error:  # noqa: BLE001 - orbax/tensorstore wrap the OS error
            self._remove_partial(step)
            path = os.path.join(self.directory, str(step))
            raise faults.WriteError(path, _os_error(error)) from error

    def _remove_partial(self, step: int) -> None:
        """Removes what a failed save of `step` left (orbax's temporary directory)."""
        for _ in range(50):  # orbax's writer threads may still be finishing
            try:
                names = os.listdir(self.directory)
            except OSError:
                return
            partial = [n for n in names if n.startswith(f"{step}.orbax-checkpoint-tmp")]
            if not partial:
                return
            for name in partial:
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
            time.sleep(0.1)

    def steps(self) -> list[int]:
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def restore_latest(self, like: Any) -> tuple[Any, dict[str, Any]] | None:
        """Newest readable checkpoint as (state shaped like `like`, meta), or None."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        steps = self.steps()
        for step in reversed(steps):
            try:
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                    ),
                )
                state = jax.tree.unflatten(
                    jax.tree.structure(like), jax.tree.leaves(restored["state"])
                )
                return state, restored["meta"]
            except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is skipped
                self._log(
                    f"warning: checkpoint step {step} is unreadable "
                    f"({type(error).__name__}: {str(error)[:200]}); trying the previous one"
                )
        if steps:
            raise ValueError(
                f"{self.directory}: none of the checkpoints (steps {steps}) can be read by this "
                "version; use another --out (nothing was changed)"
            )
        return None
