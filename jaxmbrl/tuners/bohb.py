"""BOHB (Falkner et al., ICML 2018): Hyperband whose new configurations come from a KDE model.

The brackets, the job table and the running of jobs on N slots are Hyperband's
(`jaxmbrl.tuners.hyperband`, the same state type, so `is_done`, `history` and `incumbent`
apply). What changes is where a bracket's new (rung-0) configuration comes from when its job
is handed to a slot: as in hpbandster's BOHB config generator, sampled lazily when the job
starts, from the results finished so far:

  * the model is built on the largest budget with enough finished results: with
    n_min = `min_points_in_model` (default D + 1), n_good = max(n_min, floor(15% n)) best
    and n_bad = max(n_min, floor(85% n)) following results, both sets must hold more than D
    points (so at least 2 (D + 1) results);
  * l(x) and g(x): product-kernel KDEs of the good and the bad set (statsmodels'
    KDEMultivariate as hpbandster uses it: Gaussian kernels on the unit values of floats and
    integers, Aitchison-Aitken on categorical indices, normal-reference bandwidths
    1.06 sd n^(-1/(4 + D)) floored at `min_bandwidth`);
  * `num_samples` (64) draws: a random good point, each continuous coordinate from a normal
    truncated to [0, 1] with the bandwidth times `bandwidth_factor` (3), each categorical kept
    with probability 1 - bandwidth, else uniform; the draw minimising g / l is proposed;
  * with probability `random_fraction` (1/3), or while no budget has a model, the prior.

Fitness is maximised here (hpbandster minimises the loss = -fitness); invalid fitness
(NaN, +-inf) is the worst loss, as hpbandster's None result.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.tuners.base import Tuner, replace_settings
from jaxmbrl.tuners.hyperband import DONE, HyperbandState, brackets, hyperband
from jaxmbrl.tuners.space import Categorical, SearchSpace


@dataclasses.dataclass(frozen=True)
class BOHBConfig:
    """hpbandster's BOHB defaults."""

    min_points_in_model: int = 0  # 0: D + 1
    top_n_percent: int = 15
    num_samples: int = 64
    random_fraction: float = 1.0 / 3.0
    bandwidth_factor: float = 3.0
    min_bandwidth: float = 1e-3


def bohb_config(**overrides: Any) -> BOHBConfig:
    """BOHBConfig with `overrides` applied and checked (one-line ValueError)."""
    c = replace_settings(BOHBConfig(), "BOHB", overrides)
    if c.min_points_in_model < 0:
        raise ValueError(f"bohb min_points_in_model={c.min_points_in_model} must be >= 0")
    if not 1 <= c.top_n_percent <= 99:
        raise ValueError(f"bohb top_n_percent={c.top_n_percent} must be in [1, 99]")
    if c.num_samples < 1:
        raise ValueError(f"bohb num_samples={c.num_samples} must be >= 1")
    if not 0.0 <= c.random_fraction <= 1.0:
        raise ValueError(f"bohb random_fraction={c.random_fraction} must be in [0, 1]")
    if not c.bandwidth_factor > 0 or not c.min_bandwidth > 0:
        raise ValueError(
            f"bohb bandwidth_factor={c.bandwidth_factor}, min_bandwidth={c.min_bandwidth} "
            "must be > 0"
        )
    return c


def bohb(
    space: SearchSpace,
    population_size: int,
    max_budget: int,
    *,
    eta: int = 3,
    min_budget: int = 1,
    num_iterations: int = 1,
    **overrides: Any,
) -> Tuner:
    """BOHB over `space` on `population_size` slots, budgets in trials.

    Args:
      space: the search space.
      population_size: N, the number of slots trained side by side.
      max_budget: R, the most trials one configuration gets.
      eta: halving rate.
      min_budget: the smallest budget.
      num_iterations: how many times the whole set of brackets is run (BOHB's model carries
        over from one iteration to the next).
      **overrides: any `BOHBConfig` field.

    Returns:
      A `Tuner` over `HyperbandState`; `update` uses its key for the model's draws.
    """
    c = bohb_config(**overrides)
    hb = hyperband(
        space,
        population_size,
        max_budget,
        eta=eta,
        min_budget=min_budget,
        num_iterations=num_iterations,
    )
    d = space.dim
    n_min = c.min_points_in_model or d + 1
    plan = brackets(max_budget, eta, min_budget)
    levels = np.unique([r for bracket in plan for _, r in bracket])  # budgets, static
    cats = np.array([len(p.choices) if isinstance(p, Categorical) else 0 for p in space.params])
    is_cat = jnp.asarray(cats > 0)
    has_cat = bool((cats > 0).any())
    ncat = jnp.asarray(np.maximum(cats, 2), jnp.float32)

    def to_kde(u):  # categorical coordinates as indices, as ConfigSpace's vectors
        return jnp.where(is_cat, jnp.clip(jnp.floor(u * ncat), 0, ncat - 1), u)

    def from_kde(v):
        return jnp.where(is_cat, (v + 0.5) / ncat, v)

    def model_sets(state: HyperbandState):
        """(points [J, D], good [J], bad [J], usable, jobs by rank [J], number good) of the
        largest budget with a model."""
        done = state.job_status == DONE
        budget = state.jobs.budget
        counts = jnp.stack([jnp.sum(done & (budget == b)) for b in levels])
        n_good = jnp.minimum(jnp.maximum(n_min, (c.top_n_percent * counts) // 100), counts)
        n_bad = jnp.maximum(n_min, ((100 - c.top_n_percent) * counts) // 100)
        n_bad = jnp.minimum(n_bad, counts - n_good)
        ok = (counts >= n_min) & (n_good > d) & (n_bad > d)
        usable = jnp.any(ok)
        level = jnp.max(jnp.where(ok, jnp.arange(len(levels)), 0))
        b = jnp.asarray(levels)[level]
        member = done & (budget == b)
        loss = jnp.where(jnp.isfinite(state.job_result), -state.job_result, jnp.inf)
        # rank within the budget's results: ascending loss (invalid: inf), ties by job index;
        # other jobs are NaN, which sorts last
        order = jnp.argsort(jnp.where(member, loss, jnp.nan), stable=True)
        rank = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0]))
        good = member & (rank < n_good[level])
        bad = member & (rank >= n_good[level]) & (rank < n_good[level] + n_bad[level])
        points = to_kde(state.configs[jnp.maximum(state.job_config, 0)])
        return points, good, bad, usable, order, n_good[level]

    def bandwidth(points, mask):
        m = jnp.maximum(jnp.sum(mask), 1)
        mean = jnp.sum(jnp.where(mask[:, None], points, 0.0), 0) / m
        var = jnp.sum(jnp.where(mask[:, None], jnp.square(points - mean), 0.0), 0) / m
        bw = 1.06 * jnp.sqrt(var) * m.astype(jnp.float32) ** (-1.0 / (4 + d))
        return jnp.maximum(bw, c.min_bandwidth)

    def log_pdf(x, points, mask, bw):
        """log of statsmodels' KDEMultivariate pdf at x [..., D] ('c' Gaussian, 'u' AA)."""
        cont = ~is_cat
        diff = jnp.where(cont, (x[..., None, :] - points) / bw, 0.0)  # [..., J, D]
        log_norm = jnp.sum(jnp.where(cont, jnp.log(bw * math.sqrt(2 * math.pi)), 0.0))
        per_point = -0.5 * jnp.sum(jnp.square(diff), axis=-1) - log_norm
        if has_cat:  # static: spaces without categoricals skip the Aitchison-Aitken kernel
            lam = jnp.minimum(bw, 1.0)
            same, other = jnp.log(1.0 - lam), jnp.log(lam / (ncat - 1.0))
            aa = jnp.where(x[..., None, :] == points, same, other)
            per_point = per_point + jnp.sum(jnp.where(is_cat, aa, 0.0), axis=-1)
        per_point = jnp.where(mask, per_point, -jnp.inf)
        return jax.nn.logsumexp(per_point, axis=-1) - jnp.log(jnp.maximum(jnp.sum(mask), 1))

    def propose(key, state: HyperbandState, n: int) -> jax.Array:
        """n configurations (unit vectors [n, D]), each from the model or the prior."""
        k_coin, k_prior, k_pick, k_cont, k_keep, k_cat = jax.random.split(key, 6)
        points, good, bad, usable, order, n_good = model_sets(state)
        bw_good, bw_bad = bandwidth(points, good), bandwidth(points, bad)
        shape = (n, c.num_samples)
        # a uniformly chosen good point: the good ones are the first n_good by rank
        pick = jnp.floor(jax.random.uniform(k_pick, shape) * n_good).astype(jnp.int32)
        datum = points[order[jnp.clip(pick, 0, jnp.maximum(n_good - 1, 0))]]  # [n, S, D]
        scale = c.bandwidth_factor * bw_good
        z = jax.random.truncated_normal(k_cont, -datum / scale, (1.0 - datum) / scale)
        cont = jnp.clip(datum + scale * z, 0.0, 1.0)
        keep = jax.random.uniform(k_keep, datum.shape) < 1.0 - bw_good
        other = jnp.floor(jax.random.uniform(k_cat, datum.shape) * ncat)
        draws = jnp.where(is_cat, jnp.where(keep, datum, other), cont)
        # minimise g / l, each floored at 1e-32 as in hpbandster
        floor = math.log(1e-32)
        log_l = jnp.maximum(log_pdf(draws, points, good, bw_good), floor)
        log_g = jnp.maximum(log_pdf(draws, points, bad, bw_bad), floor)
        best = jnp.argmin(log_g - log_l, axis=1)
        model = from_kde(jnp.take_along_axis(draws, best[:, None, None], axis=1)[:, 0])
        use_model = usable & (jax.random.uniform(k_coin, (n, 1)) >= c.random_fraction)
        return jnp.where(use_model, model, space.sample_unit(k_prior, n)).astype(jnp.float32)

    def init(key: jax.Array, example_member_state: Any = None) -> HyperbandState:
        return hb.init(key, example_member_state)  # no results yet: Hyperband's prior draws

    def update(key, state, fitness, member_states=None):
        state, decision = hb.update(key, state, fitness, member_states)
        n = decision.restart.shape[0]
        job = jnp.maximum(state.slot_job, 0)
        new = decision.restart & (state.slot_job >= 0) & (state.jobs.rung[job] == 0)
        proposals = propose(key, state, n)
        cfg = jnp.where(new, state.job_config[job], state.configs.shape[0])  # out: dropped
        configs = state.configs.at[cfg].set(proposals, mode="drop")
        decision = decision._replace(hparams=jnp.where(new[:, None], proposals, decision.hparams))
        state = state._replace(configs=configs, decision=decision)
        return state, decision

    return Tuner(init, update, hb.archive, space, population_size)
