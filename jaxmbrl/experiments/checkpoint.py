"""Checkpoints of a whole tuning run with orbax-checkpoint.

A checkpoint holds the run state pytree (population with agent, optimiser and replay
states, hyperparameters, tuner state incl. PBT-BT's archive, RNG keys, step counters) and
JSON metadata (the number of `members.jsonl` lines written, the best member so far, the
per-step history). Orbax writes each step into a temporary directory and renames it when
complete, so a crash mid-save leaves the previous checkpoints intact; the last K are kept.
A newest checkpoint that cannot be read (truncated, corrupted) is skipped with a warning and
the one before it is used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves and restores (run state, metadata) pairs under `directory`."""

    def __init__(self, directory: str, keep: int, log: Callable[[str], None] | None = None):
        if keep < 1:
            raise ValueError(f"keep={keep} must be >= 1")
        self._log = log or logging.warning
        self._manager = ocp.CheckpointManager(
            os.path.abspath(directory),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, enable_async_checkpointing=False
            ),
        )

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def restore_latest(self, like: Any) -> tuple[Any, dict[str, Any]] | None:
        """Newest readable checkpoint as (state shaped like `like`, meta), or None."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        for step in reversed(self.steps()):
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
        return None
