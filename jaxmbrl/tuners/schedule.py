"""Recording and replaying hyperparameter schedules (Zhang et al., AISTATS 2021, Sec. 5).

The study re-ran the schedules PBT learned on new seeds. Here a schedule is a `Decision`
whose leaves have a leading step axis [T + 1, N, ...]: entry 0 is the tuner's initial
decision (`state.decision` after `init`), entry t the decision of the t-th update.
`make_schedule_replay` turns one back into a tuner that ignores fitness and re-emits it, so
it can be run on another seed or environment; `lineage` extracts the hyperparameters the
ancestors of one member used (e.g. the final incumbent's schedule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.tuners.base import Decision, Tuner, no_archive, stay
from jaxmbrl.tuners.space import SearchSpace


def record(decision: Decision, space: SearchSpace | None = None) -> dict[str, np.ndarray]:
    """Host-side record of one decision, per member: parent, restart, changed, budget, hparams.

    With `space`, also 'values': the decoded hyperparameters (dict name -> [N] array).
    """
    rec = {
        "parent": np.asarray(decision.source),
        "restart": np.asarray(decision.restart),
        "changed": np.asarray(decision.changed),
        "budget": np.asarray(decision.budget),
        "hparams": np.asarray(decision.hparams),
    }
    if space is not None:
        rec["values"] = {k: np.asarray(v) for k, v in space.from_unit(decision.hparams).items()}
    return rec


def stack_decisions(decisions: Sequence[Decision]) -> Decision:
    """Stack per-step decisions into a schedule with leading step axis [T + 1, ...]."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *decisions)


def hparams_schedule(hparams: Any, population_size: int, budget: Any) -> Decision:
    """A schedule in which every slot keeps its own state and follows `hparams`.

    Args:
      hparams: [T + 1, D] (same for every slot) or [T + 1, N, D] unit-cube hyperparameters.
      population_size: N.
      budget: trials per step, scalar or [T + 1].

    Returns:
      The schedule (first entry restarts every slot).
    """
    h = jnp.asarray(hparams, jnp.float32)
    if h.ndim == 2:
        h = jnp.broadcast_to(h[:, None], (h.shape[0], population_size, h.shape[1]))
    steps = h.shape[0]
    b = jnp.broadcast_to(jnp.asarray(budget, jnp.int32), (steps,))
    sched = stack_decisions([stay(h[t], b[t]) for t in range(steps)])
    n = population_size
    return sched._replace(
        restart=sched.restart.at[0].set(jnp.ones((n,), bool)),
        changed=sched.changed.at[0].set(jnp.ones((n,), bool)),
    )


def lineage(schedule: Decision, member: int) -> tuple[np.ndarray, np.ndarray]:
    """The slots and hyperparameters along `member`'s ancestry, steps 0..T.

    Returns:
      (slots [T + 1] int, -1 before the lineage started; hparams [T + 1, D], the unit
      hyperparameters the ancestor used from decision t on, NaN before the start).
    """
    src = np.asarray(schedule.source)
    restart = np.asarray(schedule.restart)
    hp = np.asarray(schedule.hparams)
    steps, n = src.shape
    slots = np.full(steps, -1)
    out = np.full((steps, hp.shape[2]), np.nan, np.float32)
    m = member
    for t in range(steps - 1, -1, -1):
        slots[t], out[t] = m, hp[t, m]
        if restart[t, m]:
            break
        if src[t, m] >= n:
            raise ValueError(
                f"member {member} restores archive checkpoint {src[t, m] - n} at step {t}; "
                "lineage follows member copies only (sources < N)"
            )
        m = src[t, m]
    return slots, out


class ReplayTable(NamedTuple):
    """A schedule as data a compiled replay reads: entries padded to a fixed number of steps."""

    schedule: Decision  # leaves [S, N, ...]: the recorded entries, then copies of the last
    length: jax.Array  # int32: recorded entries (T + 1, at most S)


class ReplayState(NamedTuple):
    step: jax.Array  # int32: updates so far
    decision: Decision
    table: ReplayTable  # traced: one compiled program replays any schedule of its shape


def replay_table(
    schedule: Decision, copy_sources: bool = True, steps: int | None = None
) -> ReplayTable:
    """The replay's data for `schedule` (host-side), padded or cut to `steps` entries.

    Args:
      schedule: a Decision with leading step axis [T + 1, N, ...].
      copy_sources: keep the recorded copies (sources); False keeps every slot on its own
        state and replays only hyperparameters, restarts and budgets.
      steps: entries of the table (None: T + 1). Entries past `steps` are dropped (a run
        that ends within `steps` updates never reads them); shorter schedules are padded
        with their last entry, which the replay never reads either (it holds instead).

    Returns:
      The ReplayTable (numpy leaves).
    """
    src = np.asarray(schedule.source)
    if src.ndim != 2:
        raise ValueError(f"schedule.source must be [T + 1, N], got shape {src.shape}")
    length, n = src.shape
    if copy_sources and (src >= n).any():
        raise ValueError(
            "schedule restores archive checkpoints (source >= N); replay with "
            "copy_sources=False or record a schedule without backtracking"
        )
    sched = Decision(*(np.asarray(x) for x in schedule))
    if not copy_sources:
        sched = sched._replace(source=np.broadcast_to(np.arange(n, dtype=np.int32), (length, n)))
    steps = length if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    length = min(length, steps)
    index = np.minimum(np.arange(steps), length - 1)
    dtypes = Decision(np.int32, bool, np.float32, bool, np.int32)
    table = Decision(*(np.asarray(x[index], d) for x, d in zip(sched, dtypes, strict=True)))
    return ReplayTable(table, np.int32(length))


def make_schedule_replay(
    schedule: Decision, space: SearchSpace, copy_sources: bool = True, steps: int | None = None
) -> Tuner:
    """A tuner that re-emits `schedule` (ignoring fitness), then holds its last hparams.

    The schedule is data of the tuner's state, not a constant of its programs: `init(key,
    example_member_state=None, table=None)` takes another schedule's `replay_table(...,
    steps=steps)` as a (traced) argument, so one compiled init and update replay every
    schedule with the same number of steps, slots and hyperparameters.

    Args:
      schedule: a Decision with leading step axis [T + 1, N, ...] (the default table).
      space: the search space the hyperparameters live in.
      copy_sources: re-emit the recorded copies (sources); False keeps every slot on its own
        state and replays only hyperparameters, restarts and budgets.
      steps: entries of the tables this tuner reads (None: T + 1), see `replay_table`.

    Returns:
      A `Tuner`.
    """
    default = replay_table(schedule, copy_sources, steps)
    n = default.schedule.source.shape[1]

    def init(
        key: jax.Array, example_member_state: Any = None, table: ReplayTable | None = None
    ) -> ReplayState:
        del key, example_member_state
        table = jax.tree.map(jnp.asarray, default if table is None else table)
        return ReplayState(jnp.int32(0), jax.tree.map(lambda x: x[0], table.schedule), table)

    def update(key, state, fitness, member_states=None):
        del key, fitness, member_states
        step = state.step + 1
        table = state.table
        index = jnp.minimum(step, table.length - 1)
        recorded = jax.tree.map(lambda x: x[index], table.schedule)
        held = stay(state.decision.hparams, state.decision.budget)
        decision = jax.tree.map(lambda r, h: jnp.where(step < table.length, r, h), recorded, held)
        return ReplayState(step, decision, table), decision

    return Tuner(init, update, no_archive, space, n)
