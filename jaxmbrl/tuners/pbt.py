"""Population Based Training (Jaderberg et al., 2017), synchronous, as run by Zhang et al. 2021.

Each update is one "ready" step for every member: members in the bottom quantile copy the
state (`Decision.source`) and hyperparameters of a uniformly chosen member of the top quantile
(truncation selection), then explore: each unit-cube coordinate becomes v * factor with a
random factor from `perturb_factors`, clipped to [0, 1], or is resampled from the prior.

Presets (shared/reference/hpo_for_mbrl.md):
  * 'zhang2021': the study's code (automl/HPO_for_RL). Top = the best ceil((N-1) q) members,
    members outside the best ceil((N-1)(1-q)) copy, q = 0.2 (N = 40: 8 parents, 8 copy);
    factors 0.8/1.2; with probability 0.25 all hyperparameters are resampled; a step is 5
    trials and the first step 6.
  * 'ray_tune': Ray Tune's PopulationBasedTraining. k = ceil(N q) capped at floor(N / 2)
    members in each quantile, q = 0.25; factors 0.8/1.2 (applied here in the unit cube, not in
    the original units); each hyperparameter is resampled independently with probability 0.25.
Invalid fitness (NaN, +-inf) ranks last: such members always copy and are never parents.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxmbrl.tuners.base import (
    Decision,
    Tuner,
    no_archive,
    rank_fitness,
    replace_settings,
    start,
)
from jaxmbrl.tuners.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class PBTConfig:
    """Static PBT settings (see the module docstring for the presets)."""

    quantile: float = 0.2
    quantile_rule: str = "zhang2021"  # 'zhang2021' | 'ray_tune'
    perturb_factors: tuple = (0.8, 1.2)
    resample_probability: float = 0.25
    resample_per_param: bool = False
    step_trials: int = 5
    first_step_trials: int = 6
    initial: str = "sample"  # 'sample' (from the prior, as the study) | 'default'


PRESETS = {
    "zhang2021": PBTConfig(),
    "ray_tune": PBTConfig(
        quantile=0.25, quantile_rule="ray_tune", resample_per_param=True, first_step_trials=5
    ),
}


def pbt_config(preset: str = "zhang2021", **overrides: Any) -> PBTConfig:
    """The preset's PBTConfig with `overrides` applied and checked."""
    if preset not in PRESETS:
        raise ValueError(f"unknown PBT preset {preset!r}; valid: {', '.join(PRESETS)}")
    c = replace_settings(PRESETS[preset], "PBT", overrides)
    if not 0.0 < c.quantile <= 0.5:
        raise ValueError(f"quantile={c.quantile} must be in (0, 0.5]")
    if c.quantile_rule not in ("zhang2021", "ray_tune"):
        raise ValueError(f"quantile_rule={c.quantile_rule!r}; valid: zhang2021, ray_tune")
    if not c.perturb_factors or min(c.perturb_factors) <= 0:
        raise ValueError(f"perturb_factors={c.perturb_factors} must be non-empty and > 0")
    if not 0.0 <= c.resample_probability <= 1.0:
        raise ValueError(f"resample_probability={c.resample_probability} must be in [0, 1]")
    if c.step_trials < 1 or c.first_step_trials < 1:
        raise ValueError(
            f"step_trials={c.step_trials}, first_step_trials={c.first_step_trials} must be >= 1"
        )
    if c.initial not in ("sample", "default"):
        raise ValueError(f"initial={c.initial!r}; valid: sample, default")
    return dataclasses.replace(c, perturb_factors=tuple(float(f) for f in c.perturb_factors))


def quantile_counts(n: int, quantile: float, rule: str) -> tuple[int, int]:
    """(number of parents at the top, number of members that copy at the bottom)."""
    if rule == "ray_tune":
        k = math.ceil(round(n * quantile, 9))
        k = math.floor(n / 2) if k > n / 2 else k
        return k, k
    # The study's Truncation: ceil((N - 1) * percent); round() guards 15 * 0.2 = 3.0000000000000004
    top = math.ceil(round((n - 1) * quantile, 9))
    keep = math.ceil(round((n - 1) * (1.0 - quantile), 9))
    return top, n - keep


def truncation(
    key: jax.Array, fitness: jax.Array, n_top: int, n_bottom: int
) -> tuple[jax.Array, jax.Array]:
    """Truncation selection: (source [N], copies [N] bool).

    Members ranked in the bottom `n_bottom`, and every invalid member, copy a uniformly chosen
    valid member of the top `n_top`; if no valid parent exists nobody copies.
    """
    n = fitness.shape[0]
    ranks = rank_fitness(fitness)
    valid = jnp.isfinite(fitness)
    parent_ok = (ranks < n_top) & valid
    copies = ((ranks >= n - n_bottom) | ~valid) & jnp.any(parent_ok)
    logits = jnp.where(parent_ok, 0.0, -jnp.inf)
    parent = jax.random.categorical(key, jnp.where(jnp.any(parent_ok), logits, 0.0), shape=(n,))
    idx = jnp.arange(n, dtype=jnp.int32)
    return jnp.where(copies, parent.astype(jnp.int32), idx), copies


def explore(key: jax.Array, space: SearchSpace, hparams: jax.Array, c: PBTConfig) -> jax.Array:
    """PBT's explore step of `c` on unit hyperparameters [..., D]."""
    return space.perturb(
        key, hparams, c.perturb_factors, c.resample_probability, per_param=c.resample_per_param
    )


def initial_hparams(key: jax.Array, space: SearchSpace, n: int, c: PBTConfig) -> jax.Array:
    return space.sample_unit(key, n) if c.initial == "sample" else space.default_unit(n)


class PBTState(NamedTuple):
    step: jax.Array  # int32: updates so far
    decision: Decision


def pbt(
    space: SearchSpace, population_size: int, *, preset: str = "zhang2021", **overrides: Any
) -> Tuner:
    """Synchronous PBT over `population_size` slots.

    Args:
      space: the search space.
      population_size: N (the study: 40).
      preset: 'zhang2021' or 'ray_tune'.
      **overrides: any `PBTConfig` field.

    Returns:
      A `Tuner`; `update` ignores `member_states`.
    """
    if population_size < 1:
        raise ValueError(f"population_size={population_size} must be >= 1")
    c = pbt_config(preset, **overrides)
    n = population_size
    n_top, n_bottom = quantile_counts(n, c.quantile, c.quantile_rule)

    def init(key: jax.Array, example_member_state: Any = None) -> PBTState:
        del example_member_state
        return PBTState(jnp.int32(0), start(initial_hparams(key, space, n, c), c.first_step_trials))

    def update(key, state, fitness, member_states=None):
        del member_states
        chex.assert_shape(fitness, (n,))
        k_exploit, k_explore = jax.random.split(key)
        del key
        source, copies = truncation(k_exploit, fitness, n_top, n_bottom)
        explored = explore(k_explore, space, state.decision.hparams[source], c)
        decision = Decision(
            source=source,
            restart=jnp.zeros((n,), bool),
            hparams=jnp.where(copies[:, None], explored, state.decision.hparams),
            changed=copies,
            budget=jnp.full((n,), c.step_trials, jnp.int32),
        )
        return PBTState(state.step + 1, decision), decision

    return Tuner(init, update, no_archive, space, n)
