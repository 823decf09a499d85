"""Random search (Bergstra & Bengio, JMLR 2012) on a fixed population, as in Zhang et al. 2021.

Every slot trains one configuration drawn independently from the prior (the study: N
configurations, each for the full budget). With `steps_per_config`, a slot draws a new
configuration and restarts from a fresh agent after that many steps, so a long run on N slots
evaluates many configurations. Random search never copies states. The state keeps the
incumbent: the best valid fitness seen and the hyperparameters that reached it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxmbrl.tuners.base import Decision, Tuner, no_archive, sanitize_fitness, start, stay
from jaxmbrl.tuners.space import SearchSpace


class RandomSearchState(NamedTuple):
    step: jax.Array  # int32: updates so far
    age: jax.Array  # int32 [N]: updates since each slot's configuration started
    decision: Decision
    best_fitness: jax.Array  # float32: incumbent fitness (-inf before any valid one)
    best_hparams: jax.Array  # float32 [D]: incumbent hyperparameters


def random_search(
    space: SearchSpace,
    population_size: int,
    *,
    steps_per_config: int | None = None,
    step_trials: int = 5,
    first_step_trials: int | None = None,
) -> Tuner:
    """Random search over `space` on `population_size` slots.

    Args:
      space: the search space.
      population_size: N, the number of slots.
      steps_per_config: updates after which a slot restarts with a new sample; None: never
        (each slot keeps its configuration for the whole run, as in the study).
      step_trials: trials per update (Decision.budget).
      first_step_trials: trials before the first update (default `step_trials`).

    Returns:
      A `Tuner`; `update` ignores `member_states`.
    """
    if population_size < 1:
        raise ValueError(f"population_size={population_size} must be >= 1")
    if steps_per_config is not None and steps_per_config < 1:
        raise ValueError(f"steps_per_config={steps_per_config} must be >= 1 or None")
    if step_trials < 1:
        raise ValueError(f"step_trials={step_trials} must be >= 1")
    first = step_trials if first_step_trials is None else first_step_trials
    if first < 1:
        raise ValueError(f"first_step_trials={first} must be >= 1")
    n = population_size

    def init(key: jax.Array, example_member_state: Any = None) -> RandomSearchState:
        del example_member_state
        hparams = space.sample_unit(key, n)
        return RandomSearchState(
            step=jnp.int32(0),
            age=jnp.zeros((n,), jnp.int32),
            decision=start(hparams, first),
            best_fitness=jnp.float32(-jnp.inf),
            best_hparams=jnp.full((space.dim,), jnp.nan, jnp.float32),
        )

    def update(key, state, fitness, member_states=None):
        del member_states
        chex.assert_shape(fitness, (n,))
        clean, _ = sanitize_fitness(fitness)
        i = jnp.argmax(clean)
        better = clean[i] > state.best_fitness
        best_fitness = jnp.where(better, clean[i], state.best_fitness)
        best_hparams = jnp.where(better, state.decision.hparams[i], state.best_hparams)

        age = state.age + 1
        decision = stay(state.decision.hparams, step_trials)
        if steps_per_config is not None:
            new = age >= steps_per_config
            fresh = space.sample_unit(key, n)
            decision = decision._replace(
                restart=new, changed=new, hparams=jnp.where(new[:, None], fresh, decision.hparams)
            )
            age = jnp.where(new, 0, age)
        state = RandomSearchState(state.step + 1, age, decision, best_fitness, best_hparams)
        return state, decision

    return Tuner(init, update, no_archive, space, n)
