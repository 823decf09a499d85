"""Cross-entropy method (CEM) planner of PETS (Chua et al., NeurIPS 2018), padded and masked.

The planner optimises an action sequence of shape [max_horizon, A] over candidate batches of
shape [max_population, max_horizon, A]. Horizon, population, number of iterations, elite ratio
and momentum are traced values (`CEMHParams`), so one compiled program serves every setting a
tuner proposes and can be vmapped over a population of agents with different settings.

Masking is exact: a planner padded to (max_horizon, max_population, max_iterations) run with
hparams (h, n, i) returns bit-for-bit the first h steps that an unpadded planner built with
(h, n, i) returns for the same key, provided the cost function is itself prefix-stable:
noise for (iteration, candidate, step) comes from keys derived with `jax.random.fold_in`,
never from one draw of the padded shape, and the update (`elites`) ranks and sums exactly.
Steps >= horizon are sampled but ignored by the cost; iterations >= `iterations` are skipped
by a `lax.while_loop` (under vmap it runs to the largest `iterations` among the agents).

Candidates are evaluated in chunks of `candidate_chunk` (static; `chunks`: chunks made
only of padded candidates never run); the cost function gets the index of the chunk's
first candidate and keys its randomness by the global candidate index, so chunked and
unchunked planners draw the same numbers. A `SteppedCost` runs (iteration, chunk, step)
as one loop (`flat_loop`).

Defaults (the study's, see shared/reference/hpo_for_mbrl.md, "PETS"): horizon 30, population
500, 5 iterations, elite ratio 0.1, alpha 0.1; initial variance (ub - lb)^2 / 16.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.planning import chunks, elites, flat_loop
from jaxmbrl.planning.elites import NONFINITE_COST
from jaxmbrl.planning.flat_loop import SteppedCost

__all__ = [
    "CEM",
    "NONFINITE_COST",
    "CEMConfig",
    "CEMHParams",
    "CostFn",
    "SteppedCost",
    "check_cem_hparams",
    "default_cem_hparams",
    "make_cem",
    "planning_flops",
]

# cost_fn(key, actions [C, max_horizon, A], horizon, first) -> costs [C]: row i is candidate
# first + i (first: int32 scalar, traced); randomness must be keyed by that global index.
CostFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class CEMConfig:
    """Static planner settings (they fix array shapes)."""

    action_low: Any  # [A]
    action_high: Any  # [A]
    max_horizon: int = 30
    max_population: int = 500
    max_iterations: int = 5
    # Candidates per cost evaluation; None: all max_population at once (one chunk).
    candidate_chunk: int | None = None


class CEMHParams(NamedTuple):
    """Traced, per-agent tunable planner hyperparameters (scalars, or [B] when vmapped)."""

    horizon: jax.Array  # int32, 1..max_horizon
    population: jax.Array  # int32, 1..max_population
    iterations: jax.Array  # int32, 1..max_iterations
    elite_ratio: jax.Array  # float32, (0, 1]
    alpha: jax.Array  # float32, [0, 1]: weight of the previous mean/variance


class CEM(NamedTuple):
    """Pure functions of a CEM planner built by `make_cem`."""

    # initial_mean(hparams=None) -> [max_horizon, A]: the bounds' midpoint
    initial_mean: Callable[..., jax.Array]
    # optimize(key, cost_fn, init_mean, hparams) -> (plan [max_horizon, A], info)
    optimize: Callable[
        [jax.Array, CostFn, jax.Array, CEMHParams], tuple[jax.Array, dict[str, jax.Array]]
    ]
    # shift(plan, hparams=None) -> the warm start of the next step
    shift: Callable[..., jax.Array]
    # sample(key, mean, var) -> truncated-normal candidates [max_population, max_horizon, A]
    sample: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    # padded_work(hparams) -> candidate-steps one planning step executes (int32, traced)
    padded_work: Callable[[CEMHParams], jax.Array]


def default_cem_hparams(
    horizon: int = 30,
    population: int = 500,
    iterations: int = 5,
    elite_ratio: float = 0.1,
    alpha: float = 0.1,
) -> CEMHParams:
    """The study's CEM defaults (30, 500, 5, 0.1, 0.1), overridable, as jnp scalars."""
    return CEMHParams(
        horizon=jnp.asarray(horizon, jnp.int32),
        population=jnp.asarray(population, jnp.int32),
        iterations=jnp.asarray(iterations, jnp.int32),
        elite_ratio=jnp.asarray(elite_ratio, jnp.float32),
        alpha=jnp.asarray(alpha, jnp.float32),
    )


def check_cem_hparams(config: CEMConfig, hparams: CEMHParams) -> None:
    """Eagerly validates concrete hparams against `config` (inside jit they are clamped)."""
    limits = {
        "horizon": (1, config.max_horizon),
        "population": (1, config.max_population),
        "iterations": (1, config.max_iterations),
        "elite_ratio": (0.0, 1.0),
        "alpha": (0.0, 1.0),
    }
    for name, (low, high) in limits.items():
        value = np.asarray(getattr(hparams, name))
        above_low = value > low if name == "elite_ratio" else value >= low
        if not np.all(above_low & (value <= high)):
            bracket = "(" if name == "elite_ratio" else "["
            raise ValueError(
                f"CEMHParams.{name}={value.tolist()} outside the valid range "
                f"{bracket}{low}, {high}]"
            )


def planning_flops(
    forward_flops_per_row: float,
    hparams: CEMHParams,
    num_particles: int,
    *,
    padded_population: int | None = None,
) -> np.ndarray:
    """Model FLOPs of one planning step (one action): iterations*population*particles*horizon*f.

    Args:
      forward_flops_per_row: FLOPs of one ensemble member's forward pass on one input row.
      hparams: concrete CEMHParams (scalars, or [B] arrays for a population of agents).
      num_particles: particles per candidate.
      padded_population: if given (the config's max_population), count the FLOPs the padded
        program executes instead of the useful ones (padded candidates are evaluated too).

    Returns:
      float64 array of the shape of the hparams' fields.
    """
    population = np.asarray(hparams.population, np.float64)
    if padded_population is not None:
        population = np.full_like(population, float(padded_population))
    return (
        np.asarray(hparams.iterations, np.float64)
        * population
        * float(num_particles)
        * np.asarray(hparams.horizon, np.float64)
        * float(forward_flops_per_row)
    )


def make_cem(config: CEMConfig) -> CEM:
    """Builds a padded CEM planner (PETS' CEM with truncated-normal samples and momentum).

    Args:
      config: static settings; action bounds [A] and the maxima that fix the shapes.

    Returns:
      CEM with
        initial_mean(hparams=None) -> [max_horizon, A] bounds' midpoint;
        optimize(key, cost_fn, mean_init [max_horizon, A], hparams) -> (plan, info): plan
          [max_horizon, A] is the mean of the elites of the last executed iteration (the
          original returns the momentum-smoothed mean, given as info['smoothed_mean']); steps
          >= horizon of the plan are meaningless; info holds scalars 'best_cost' and
          'elite_cost' (best and mean elite cost of the last iteration), 'smoothed_mean' and
          'var' [max_horizon, A];
        shift(plan, hparams=None) -> warm start: plan shifted by one step, steps >= horizon - 1
          set to the midpoint;
        sample(key, mean, var) -> [max_population, max_horizon, A] candidates in bounds;
        padded_work(hparams) -> iterations x executed candidates x horizon, the candidate-steps
          one planning step runs alone (`chunks.executed_population`).
      cost_fn of `optimize` is called once per chunk as cost_fn(key, actions [C,
      max_horizon, A], horizon, first) -> [C], `first` the traced index of the chunk's
      first candidate (C: the chunk size). A `SteppedCost` instead runs (iteration, chunk,
      step) as ONE `while_loop` of iterations x chunks x horizon ticks: alone the same work,
      but under vmap every agent runs to the largest such product in the batch rather than
      to the largest iterations times the largest chunk count times the largest horizon.
    """
    low = np.asarray(config.action_low, np.float32)
    high = np.asarray(config.action_high, np.float32)
    if low.ndim != 1 or low.shape != high.shape or low.size == 0:
        raise ValueError(
            f"action_low/action_high must be 1-D of equal length, got {low.shape} and {high.shape}"
        )
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
        raise ValueError(f"action bounds must be finite with low < high, got {low} and {high}")
    for name in ("max_horizon", "max_population", "max_iterations", "candidate_chunk"):
        value = getattr(config, name)
        if name == "candidate_chunk" and value is None:
            continue
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"CEMConfig.{name}={value!r} must be an int >= 1")
    num_actions = low.shape[0]
    max_h, max_p, max_i = (
        int(config.max_horizon),
        int(config.max_population),
        int(config.max_iterations),
    )
    chunk = chunks.chunk_size(max_p, config.candidate_chunk)
    padded_p = chunks.executed_population(max_p, chunk)  # room for the last chunk
    midpoint = jnp.asarray((low + high) / 2)
    init_var = jnp.broadcast_to(jnp.asarray((high - low) ** 2 / 16), (max_h, num_actions))
    low_j, high_j = jnp.asarray(low), jnp.asarray(high)

    def initial_mean(hparams: CEMHParams | None = None) -> jax.Array:
        del hparams
        return jnp.broadcast_to(midpoint, (max_h, num_actions))

    def sample_rows(key, mean, var, first, count):
        # Candidates first .. first + count - 1, each from its own fold_in key.
        chex.assert_shape([mean, var], (max_h, num_actions))

        def noise(cand_key, step):
            step_key = jax.random.fold_in(cand_key, step)
            return jax.random.truncated_normal(step_key, -2.0, 2.0, (num_actions,), jnp.float32)

        cand_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, first + jnp.arange(count))
        eps = jax.vmap(jax.vmap(noise, (None, 0)), (0, None))(cand_keys, jnp.arange(max_h))
        # Cap the variance so that 2 std around the mean stay inside the bounds.
        var = jnp.minimum(var, jnp.minimum(((mean - low_j) / 2) ** 2, ((high_j - mean) / 2) ** 2))
        return jnp.clip(mean + jnp.sqrt(var) * eps, low_j, high_j)

    def sample(key: jax.Array, mean: jax.Array, var: jax.Array) -> jax.Array:
        return sample_rows(key, mean, var, 0, max_p)

    def padded_work(hparams: CEMHParams) -> jax.Array:
        horizon = jnp.clip(jnp.asarray(hparams.horizon), 1, max_h).astype(jnp.int32)
        population = jnp.clip(jnp.asarray(hparams.population), 1, max_p).astype(jnp.int32)
        iterations = jnp.clip(jnp.asarray(hparams.iterations), 1, max_i).astype(jnp.int32)
        return iterations * chunks.executed_population(population, chunk) * horizon

    def optimize(
        key: jax.Array, cost_fn: CostFn | SteppedCost, mean_init: jax.Array, hparams: CEMHParams
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        chex.assert_shape(mean_init, (max_h, num_actions))
        hparams = CEMHParams(*(jnp.asarray(x) for x in hparams))
        horizon = jnp.clip(hparams.horizon, 1, max_h).astype(jnp.int32)
        population = jnp.clip(hparams.population, 1, max_p).astype(jnp.int32)
        iterations = jnp.clip(hparams.iterations, 1, max_i).astype(jnp.int32)
        ratio = jnp.clip(hparams.elite_ratio.astype(jnp.float32), 0.0, 1.0)
        num_elites = jnp.clip(jnp.round(ratio * population), 1, population).astype(jnp.int32)
        alpha = jnp.clip(hparams.alpha.astype(jnp.float32), 0.0, 1.0)
        update = elites.make_update(max_p, population, num_elites, alpha)
        mean0 = jnp.clip(mean_init.astype(jnp.float32), low_j, high_j)
        num_chunks = (population + chunk - 1) // chunk
        if isinstance(cost_fn, SteppedCost):
            mean, var, plan, best, elite_cost = flat_loop.run(
                key,
                cost_fn,
                update,
                sample_rows,
                mean0,
                init_var,
                horizon=horizon,
                iterations=iterations,
                num_chunks=num_chunks,
                chunk=chunk,
                padded_p=padded_p,
                max_iterations=max_i,
            )
        else:

            def body(carry):
                it, mean, var, _, _, _ = carry
                sample_key, cost_key = jax.random.split(jax.random.fold_in(key, it))
                cands = sample(sample_key, mean, var)
                costs = chunks.evaluate(cost_fn, cost_key, cands, horizon, num_chunks, chunk)
                return (it + 1, *update(mean, var, cands, costs))

            inf = jnp.asarray(jnp.inf, jnp.float32)
            init = (jnp.asarray(0, jnp.int32), mean0, init_var, mean0, inf, inf)
            _, mean, var, plan, best, elite_cost = jax.lax.while_loop(
                lambda carry: carry[0] < iterations, body, init
            )
        info = {"best_cost": best, "elite_cost": elite_cost, "smoothed_mean": mean, "var": var}
        return plan, info

    def shift(plan: jax.Array, hparams: CEMHParams | None = None) -> jax.Array:
        chex.assert_shape(plan, (max_h, num_actions))
        shifted = jnp.concatenate([plan[1:], midpoint[None]], axis=0)
        if hparams is None:
            return shifted
        horizon = jnp.clip(hparams.horizon, 1, max_h)
        # Steps the current horizon never planned restart from the midpoint.
        return jnp.where(jnp.arange(max_h)[:, None] >= horizon - 1, midpoint, shifted)

    return CEM(
        initial_mean=initial_mean,
        optimize=optimize,
        shift=shift,
        sample=sample,
        padded_work=padded_work,
    )
