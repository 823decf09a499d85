"""Common interface of the population tuners of Zhang et al. (AISTATS 2021).

A tuner drives a fixed population of N slots (agents trained side by side, e.g. vmapped).
Like an optax transformation it is a NamedTuple of pure functions over an explicit state:

    state = tuner.init(key, example_member_state)       # state.decision: what to run first
    loop:
        members = apply_decision(members, state.decision, tuner.archive(state), fresh)
        train every slot for decision.budget trials; fitness [N] (higher is better)
        state, decision = tuner.update(key, state, fitness, members)

`Decision` says, per slot, which state to continue from (`source`: an index into the N member
states followed by the K archived states of PBT-BT), whether to start from a fresh agent
(`restart`), the unit-cube hyperparameters to use from now on and for how many trials.
`update` is jittable: shapes depend only on N, D and the tuner's static settings.

Fitness convention: higher is better; NaN and +-inf are invalid, rank below every finite
value and never become a parent, elite or incumbent.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import chex
import jax
import jax.numpy as jnp

from jaxmbrl.tuners.space import SearchSpace


class Decision(NamedTuple):
    """What each of the N slots does until the next update."""

    source: jax.Array  # int32 [N]: index into concat(member states [N], archive states [K])
    restart: jax.Array  # bool [N]: start from a fresh agent (a new configuration)
    hparams: jax.Array  # float32 [N, D]: unit-cube hyperparameters used from now on
    changed: jax.Array  # bool [N]: hyperparameters changed at this decision
    budget: jax.Array  # int32 [N]: trials to run before the next update (0: slot idle)


class InitFn(Protocol):
    def __call__(self, key: jax.Array, example_member_state: Any = None) -> Any:
        """The tuner's first state; `state.decision` is what the slots run first."""


class UpdateFn(Protocol):
    def __call__(
        self, key: jax.Array, state: Any, fitness: jax.Array, member_states: Any = None
    ) -> tuple[Any, Decision]:
        """The next state and decision from the slots' fitness [N] (higher is better)."""


class ArchiveFn(Protocol):
    def __call__(self, state: Any) -> Any:
        """Archived member states ([K, ...] pytree) decisions may point to, or None."""


class Tuner(NamedTuple):
    """A population tuner: `init(key, example_member_state=None) -> state` and
    `update(key, state, fitness [N], member_states=None) -> (state, Decision)`.

    Every tuner state has a `decision` field (the decision in force) and a `step` field
    (number of updates so far). `archive(state)` returns the archived member states
    ([K, ...] pytree) that decisions may point to (PBT-BT), or None.
    """

    init: InitFn
    update: UpdateFn
    archive: ArchiveFn
    space: SearchSpace
    population_size: int


def no_archive(state: Any) -> None:
    """`Tuner.archive` of tuners that never restore archived checkpoints."""
    del state
    return None


def stay(hparams: jax.Array, budget: jax.Array | int) -> Decision:
    """Every slot continues from its own state with `hparams`."""
    n = hparams.shape[0]
    return Decision(
        source=jnp.arange(n, dtype=jnp.int32),
        restart=jnp.zeros((n,), bool),
        hparams=hparams.astype(jnp.float32),
        changed=jnp.zeros((n,), bool),
        budget=jnp.broadcast_to(jnp.asarray(budget, jnp.int32), (n,)),
    )


def start(hparams: jax.Array, budget: jax.Array | int) -> Decision:
    """Every slot starts a fresh agent with `hparams` (a tuner's first decision)."""
    d = stay(hparams, budget)
    n = hparams.shape[0]
    return d._replace(restart=jnp.ones((n,), bool), changed=jnp.ones((n,), bool))


def sanitize_fitness(fitness: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(fitness with invalid entries set to -inf, valid mask); invalid = NaN or +-inf."""
    chex.assert_rank(fitness, 1)
    fitness = jnp.asarray(fitness, jnp.float32)
    valid = jnp.isfinite(fitness)
    return jnp.where(valid, fitness, -jnp.inf), valid


def rank_fitness(fitness: jax.Array) -> jax.Array:
    """Rank of each member, 0 = best; invalid members last; ties broken by index."""
    clean, valid = sanitize_fitness(fitness)
    # Invalid members get key +inf, after every valid one; the stable sort keeps index order.
    order = jnp.argsort(jnp.where(valid, -clean, jnp.inf), stable=True)
    return jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=order.dtype))


def fitness_from_returns(returns: jax.Array, last: int = 3) -> jax.Array:
    """The study's fitness: mean return of the last `last` trials, returns [N, T] -> [N]."""
    chex.assert_rank(returns, 2)
    return jnp.mean(returns[:, -last:], axis=-1)


def apply_decision(
    member_states: Any,
    decision: Decision,
    archive_states: Any = None,
    fresh_states: Any = None,
) -> Any:
    """New member states: gather `source` from concat(members, archive); restart -> fresh.

    Args:
      member_states: pytree with leading axis N.
      decision: the tuner's decision.
      archive_states: pytree with leading axis K (`tuner.archive(state)`), or None.
      fresh_states: pytree with leading axis N of freshly initialised agents, used where
        `decision.restart`; if None, restarted slots keep the gathered state (the caller
        re-initialises them itself).

    Returns:
      Member states with leading axis N.
    """
    src = decision.source
    chex.assert_rank(src, 1)
    if archive_states is None:
        gathered = jax.tree.map(lambda m: m[src], member_states)
    else:
        gathered = jax.tree.map(
            lambda m, a: jnp.concatenate([m, a.astype(m.dtype)])[src], member_states, archive_states
        )
    if fresh_states is None:
        return gathered

    def pick(fresh, old):
        mask = decision.restart.reshape((-1,) + (1,) * (old.ndim - 1))
        return jnp.where(mask, fresh, old)

    return jax.tree.map(pick, fresh_states, gathered)


def replace_settings(base: Any, name: str, overrides: dict[str, Any]) -> Any:
    """The settings dataclass `base` with `overrides` applied; an unknown field is a one-line
    ValueError naming the tuner (`name`) and the valid fields."""
    fields = tuple(f.name for f in dataclasses.fields(base))
    unknown = set(overrides) - set(fields)
    if unknown:
        raise ValueError(f"unknown {name} option(s) {sorted(unknown)}; valid: {fields}")
    return dataclasses.replace(base, **overrides)
