"""Population-Based Bandits (PB2; Parker-Holder et al., NeurIPS 2020), synchronous, on device.

PB2 is PBT (`jaxmbrl.tuners.pbt`: the same truncation exploit and settings) whose explore
step is a time-varying GP bandit instead of random perturbation:

  * data: one row per member and interval (the last `history` intervals): the interval's
    index t (time), the fitness of the state it started from (R_before, scaled to [0, 1] over
    the data), its unit hyperparameters, and y = (fitness at the end - R_before) / trials;
  * GP (tinygp) with the time-varying squared exponential of the paper and of Ray Tune,
    k = s^2 exp(-|x - x'|^2 / l) (1 - eps)^(|t - t'| / 2), x = (R_before, hyperparameters),
    on standardised y; (l, eps, noise) maximise the marginal likelihood over a fixed grid
    (Ray: L-BFGS on GPy's likelihood, l clipped to <= 1; a grid keeps `update` jittable);
  * each member that copies gets, one after the other (GP-BUCB, Desautels et al. 2014),
    the continuous hyperparameters maximising mu + sqrt(beta) sigma at (t + 1, its parent's
    fitness), beta = 0.2 + log(0.4 |D|) (Ray's constants), mu from the data, sigma from the
    data plus the points already chosen in this round (their y unknown: only variance
    shrinks). The acquisition is maximised over `num_candidates` uniform points plus the
    parent's own hyperparameters (Ray: 10 L-BFGS-B restarts). Integers are snapped to their
    bin; categorical hyperparameters are kept from the parent or, with PBT's
    `resample_probability`, resampled from the prior, and enter the GP as given.

Differences from Ray Tune's PB2 (checked against ray/tune/schedulers/pb2.py, pb2_utils.py):
Ray uses mu + kappa * variance (the paper and this module: sigma); Ray normalises time to
[0, 1] over the data, here t counts intervals as in the paper's kernel, so eps is a forgetting
rate per interval; Ray drops the first interval after an exploit (its diff is taken within
one trial and config), here that interval counts from the parent's fitness.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import tinygp

from jaxmbrl.tuners.base import Decision, Tuner, no_archive, replace_settings, start
from jaxmbrl.tuners.pbt import initial_hparams, pbt_config, quantile_counts, truncation
from jaxmbrl.tuners.space import Categorical, Int, SearchSpace

# Marginal-likelihood grid of the GP's (lengthscale, epsilon, noise variance); variance 1
# (y is standardised). Ray clips the lengthscale to <= 1 and epsilon to <= 0.5.
LENGTHSCALES = (0.03, 0.1, 0.3, 1.0)
EPSILONS = (0.01, 0.05, 0.15, 0.5)
NOISES = (0.01, 0.1, 0.5)
MASKED = 1e6  # noise variance of empty rows of the fixed-size buffers: no information


@dataclasses.dataclass(frozen=True)
class PB2Config:
    """Static PB2 settings (the exploit settings are PBT's, see `pbt_config`)."""

    history: int = 10  # intervals of data the GP is fitted on (Ray: the last 1000 rows)
    num_candidates: int = 256  # uniform points the UCB is maximised over


def pb2_config(**overrides: Any) -> PB2Config:
    """PB2Config with `overrides` applied and checked (one-line ValueError)."""
    c = replace_settings(PB2Config(), "PB2", overrides)
    if c.history < 1:
        raise ValueError(f"pb2 history={c.history} must be >= 1")
    if c.num_candidates < 1:
        raise ValueError(f"pb2 num_candidates={c.num_candidates} must be >= 1")
    return c


class TimeVaryingSE(tinygp.kernels.Kernel):
    """PB2's kernel on rows (t, x...): s^2 exp(-|x - x'|^2 / l) (1 - eps)^(|t - t'| / 2)."""

    lengthscale: jax.Array
    epsilon: jax.Array

    def evaluate(self, X1: jax.Array, X2: jax.Array) -> jax.Array:
        sq = jnp.sum(jnp.square(X1[1:] - X2[1:]))
        return jnp.exp(-sq / self.lengthscale) * (1.0 - self.epsilon) ** (
            0.5 * jnp.abs(X1[0] - X2[0])
        )


class PB2Data(NamedTuple):
    """Ring buffer of the last H intervals' rows, [H, N, ...]."""

    time: jax.Array  # float32 [H, N]: interval index t
    r_before: jax.Array  # float32 [H, N]: fitness the interval started from
    hparams: jax.Array  # float32 [H, N, D]
    y: jax.Array  # float32 [H, N]: change of fitness per trial
    valid: jax.Array  # bool [H, N]


class PB2State(NamedTuple):
    step: jax.Array  # int32: updates so far
    decision: Decision
    start_fitness: jax.Array  # float32 [N]: fitness of the state each slot started from
    data: PB2Data


def _gp(params, x, valid):
    """The GP on rows x [M, 1 + F]; rows not `valid` carry no information."""
    lengthscale, epsilon, noise = params
    diag = jnp.where(valid, noise, MASKED)
    return tinygp.GaussianProcess(TimeVaryingSE(lengthscale, epsilon), x, diag=diag)


def fit_gp(x: jax.Array, y: jax.Array, valid: jax.Array) -> tuple[jax.Array, ...]:
    """(lengthscale, epsilon, noise) of the grid maximising the marginal likelihood."""
    grid = np.stack(np.meshgrid(LENGTHSCALES, EPSILONS, NOISES, indexing="ij"), -1)
    grid = jnp.asarray(grid.reshape(-1, 3), jnp.float32)
    y = jnp.where(valid, y, 0.0)
    logp = jax.vmap(lambda p: _gp(p, x, valid).log_probability(y))(grid)
    best = grid[jnp.argmax(jnp.where(jnp.isfinite(logp), logp, -jnp.inf))]
    return tuple(best)


def pb2(
    space: SearchSpace,
    population_size: int,
    *,
    history: int | None = None,
    num_candidates: int | None = None,
    preset: str = "zhang2021",
    **overrides: Any,
) -> Tuner:
    """Synchronous PB2 over `population_size` slots.

    Args:
      space: the search space.
      population_size: N (PB2's point: a few members, e.g. 4).
      history: intervals of data the GP sees (default `PB2Config.history`).
      num_candidates: uniform points the acquisition is maximised over.
      preset: PBT preset of the exploit step ('zhang2021' or 'ray_tune').
      **overrides: any `PBTConfig` field (quantile, step_trials, resample_probability, ...).

    Returns:
      A `Tuner`; `update` ignores `member_states`.
    """
    if population_size < 1:
        raise ValueError(f"population_size={population_size} must be >= 1")
    given = dict(history=history, num_candidates=num_candidates)
    g = pb2_config(**{k: v for k, v in given.items() if v is not None})
    c = pbt_config(preset, **overrides)
    n, d, h = population_size, space.dim, g.history
    n_top, n_bottom = quantile_counts(n, c.quantile, c.quantile_rule)
    is_cat = jnp.asarray([isinstance(p, Categorical) for p in space.params])

    def snap(u: jax.Array) -> jax.Array:
        """Integers to the centre of their bin, so the hparams say what is run."""
        cols = [
            p.to_unit(p.from_unit(u[..., i])) if isinstance(p, Int) else u[..., i]
            for i, p in enumerate(space.params)
        ]
        return jnp.stack(cols, axis=-1).astype(jnp.float32)

    def init(key: jax.Array, example_member_state: Any = None) -> PB2State:
        del example_member_state
        data = PB2Data(
            time=jnp.zeros((h, n), jnp.float32),
            r_before=jnp.zeros((h, n), jnp.float32),
            hparams=jnp.zeros((h, n, d), jnp.float32),
            y=jnp.zeros((h, n), jnp.float32),
            valid=jnp.zeros((h, n), bool),
        )
        hp = snap(initial_hparams(key, space, n, c))
        nan = jnp.full((n,), jnp.nan, jnp.float32)
        return PB2State(jnp.int32(0), start(hp, c.first_step_trials), nan, data)

    def record(state: PB2State, fitness: jax.Array) -> PB2Data:
        dec, f0 = state.decision, state.start_fitness
        y = (fitness - f0) / jnp.maximum(dec.budget, 1).astype(jnp.float32)
        row = state.step % h
        t = jnp.full((n,), state.step + 1, jnp.float32)
        data = state.data
        return PB2Data(
            time=data.time.at[row].set(t),
            r_before=data.r_before.at[row].set(jnp.where(jnp.isfinite(f0), f0, 0.0)),
            hparams=data.hparams.at[row].set(dec.hparams),
            y=data.y.at[row].set(jnp.where(jnp.isfinite(y), y, 0.0)),
            valid=data.valid.at[row].set(jnp.isfinite(y)),
        )

    def explore(key, state, data, fitness, source, copies):
        """GP-BUCB hyperparameters for the members that copy (others: unchanged)."""
        valid = data.valid.reshape(-1)
        num = jnp.sum(valid)
        r = data.r_before.reshape(-1)
        r_lo = jnp.min(jnp.where(valid, r, jnp.inf))
        r_hi = jnp.max(jnp.where(valid, r, -jnp.inf))
        r_scale = jnp.where(r_hi > r_lo, r_hi - r_lo, 1.0)
        scale_r = lambda v: jnp.where(num > 0, (v - r_lo) / r_scale, 0.0)  # noqa: E731
        y = data.y.reshape(-1)
        mean_y = jnp.sum(jnp.where(valid, y, 0.0)) / jnp.maximum(num, 1)
        var_y = jnp.sum(jnp.where(valid, jnp.square(y - mean_y), 0.0)) / jnp.maximum(num, 1)
        y = jnp.where(valid, (y - mean_y) / jnp.sqrt(jnp.maximum(var_y, 1e-12)), 0.0)
        x = jnp.concatenate(
            [data.time.reshape(-1, 1), scale_r(r)[:, None], data.hparams.reshape(-1, d)], 1
        )
        params = fit_gp(x, y, valid)
        gp_data = _gp(params, x, valid)
        kappa = jnp.sqrt(0.2 + jnp.maximum(0.0, jnp.log(0.4 * jnp.maximum(num, 1))))

        k_cat, k_coin, k_cand = jax.random.split(key, 3)
        parent_hp = state.decision.hparams[source]
        resample = jax.random.uniform(k_coin, (n, 1)) < c.resample_probability
        cats = jnp.where(resample, jax.random.uniform(k_cat, (n, d)), parent_hp)
        t_next = (state.step + 2).astype(jnp.float32)
        parent_f = jnp.where(jnp.isfinite(fitness), fitness, r_lo)[source]
        fixed = jnp.stack([jnp.full((n,), t_next), scale_r(parent_f)], 1)  # [N, 2]
        cand_keys = jax.random.split(k_cand, n)
        pending0 = (jnp.zeros((n, 2 + d), jnp.float32), jnp.zeros((n,), bool))

        def choose(pending, i):
            p_x, p_on = pending
            cand = jax.random.uniform(cand_keys[i], (g.num_candidates, d))
            cand = jnp.concatenate([parent_hp[i][None], cand])
            cand = jnp.where(is_cat, cats[i], cand)
            x_test = jnp.concatenate([jnp.broadcast_to(fixed[i], (cand.shape[0], 2)), cand], 1)
            _, cond = gp_data.condition(y, x_test)
            gp_all = _gp(params, jnp.concatenate([x, p_x]), jnp.concatenate([valid, p_on]))
            _, cond_all = gp_all.condition(jnp.zeros(x.shape[0] + n), x_test)
            ucb = cond.loc + kappa * jnp.sqrt(jnp.maximum(cond_all.variance, 0.0))
            best = cand[jnp.argmax(jnp.where(jnp.isfinite(ucb), ucb, -jnp.inf))]
            # With no data the GP is flat: explore uniformly (the first candidates are random).
            best = jnp.where(num > 0, best, cand[1])
            best = snap(best)
            on = copies[i]
            p_x = p_x.at[i].set(jnp.where(on, jnp.concatenate([fixed[i], best]), p_x[i]))
            return (p_x, p_on.at[i].set(on)), best

        _, chosen = jax.lax.scan(choose, pending0, jnp.arange(n))
        return chosen

    def update(key, state, fitness, member_states=None):
        del member_states
        chex.assert_shape(fitness, (n,))
        fitness = jnp.asarray(fitness, jnp.float32)
        k_exploit, k_explore = jax.random.split(key)
        del key
        data = record(state, fitness)
        source, copies = truncation(k_exploit, fitness, n_top, n_bottom)
        chosen = explore(k_explore, state, data, fitness, source, copies)
        hparams = jnp.where(copies[:, None], chosen, state.decision.hparams)
        decision = Decision(
            source=source,
            restart=jnp.zeros((n,), bool),
            hparams=hparams,
            changed=copies,
            budget=jnp.full((n,), c.step_trials, jnp.int32),
        )
        start_fitness = jnp.where(jnp.isfinite(fitness), fitness, jnp.nan)[source]
        return PB2State(state.step + 1, decision, start_fitness, data), decision

    return Tuner(init, update, no_archive, space, n)
