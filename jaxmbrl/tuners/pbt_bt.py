"""PBT with backtracking (PBT-BT) of Zhang et al. (AISTATS 2021), on device.

PBT-BT is synchronous PBT (`jaxmbrl.tuners.pbt`) plus an archive of elite checkpoints. The
archive holds the K = ceil(elite_ratio * N) best (score, step, member, hyperparameters, state)
checkpoints seen so far, at most one per member (its best), as the study's
`Population.get_elites` intends: each member's best trial, the top K of those. The archived
states are a copy of the member states (a pytree with leading axis K) kept in the tuner state.

Every `delta_t` updates (steps 30, 60, ... in the study) backtracking replaces truncation: a
member whose fitness f satisfies (f - e) / |e| < -tolerance restarts from a uniformly chosen
elite checkpoint (`Decision.source` = N + archive index) with explored hyperparameters;
the others keep going. Between checks ordinary PBT truncation applies. Invalid fitness (NaN,
+-inf) always backtracks at a check and is never archived.

The comparison point e (`elite_reference`): the study's code compares with `elites[-1]` of a
list whose sort is commented out, so its effective reference is arbitrary; we use the intended
meaning, the worst of the K elites ('worst', default). 'mean' (mean elite score) and 'random'
(the elite the member would restart from) are offered as alternatives. |e| is floored at 1e-8.

Exploration after backtracking (`tabu=True`, the study's Exploration_BT): each elite
checkpoint keeps the set of sign patterns (one factor 0.8 or 1.2 per hyperparameter, 2^D
patterns) already tried from it and draws an untried one; with probability
`resample_probability`, or when all are tried, all hyperparameters are resampled. The record
is reset when an archive slot receives a new checkpoint. Settings: elite ratio 0.125, delta_t
30 steps, tolerance 0.2 (shared/reference/hpo_for_mbrl.md).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxmbrl.tuners.base import Decision, Tuner, sanitize_fitness, start
from jaxmbrl.tuners.pbt import explore, initial_hparams, pbt_config, quantile_counts, truncation
from jaxmbrl.tuners.space import SearchSpace

MAX_TABU_DIM = 12  # 2^12 sign patterns per elite
ELITE_REFERENCES = ("worst", "mean", "random")


class Archive(NamedTuple):
    score: jax.Array  # float32 [K]; -inf: empty
    member: jax.Array  # int32 [K]; member the checkpoint came from, -1: empty
    step: jax.Array  # int32 [K]; update at which it was scored
    hparams: jax.Array  # float32 [K, D]; hyperparameters it was trained with
    tried: jax.Array  # bool [K, P]; sign patterns already explored from it (tabu)
    states: Any  # pytree [K, ...]; the checkpoints


class PBTBTState(NamedTuple):
    step: jax.Array  # int32: updates so far
    decision: Decision
    archive: Archive


def insert(archive: Archive, fitness, member_states, hparams, step) -> Archive:
    """Archive the members' checkpoints: top K of (kept entries, improved members)."""
    clean, valid = sanitize_fitness(fitness)
    n, k = clean.shape[0], archive.score.shape[0]
    same = (archive.member[:, None] == jnp.arange(n)[None, :]) & (archive.score > -jnp.inf)[:, None]
    superseded = jnp.any(same & (clean[None, :] > archive.score[:, None]), axis=1)
    dominated = jnp.any(same & (archive.score[:, None] >= clean[None, :]), axis=0)
    pool = jnp.concatenate(
        [
            jnp.where(superseded, -jnp.inf, archive.score),
            jnp.where(valid & ~dominated, clean, -jnp.inf),
        ]
    )
    score, idx = jax.lax.top_k(pool, k)  # ties: lower index, i.e. the older checkpoint
    keep = score > -jnp.inf

    def pick(old, new):
        return jnp.concatenate([old, new.astype(old.dtype)])[idx]

    return Archive(
        score=score,
        member=jnp.where(keep, pick(archive.member, jnp.arange(n, dtype=jnp.int32)), -1),
        step=pick(archive.step, jnp.full((n,), step, jnp.int32)),
        hparams=pick(archive.hparams, hparams),
        tried=jnp.where((idx < k)[:, None], archive.tried[jnp.minimum(idx, k - 1)], False),
        states=jax.tree.map(pick, archive.states, member_states),
    )


def pbt_bt(
    space: SearchSpace,
    population_size: int,
    *,
    elite_ratio: float = 0.125,
    delta_t: int = 30,
    tolerance: float = 0.2,
    elite_reference: str = "worst",
    tabu: bool = True,
    preset: str = "zhang2021",
    **overrides: Any,
) -> Tuner:
    """PBT-BT over `population_size` slots.

    Args:
      space: the search space.
      population_size: N (the study: 40).
      elite_ratio: K = ceil(elite_ratio * N) archived elites (the study: 0.125 -> 5 of 40).
      delta_t: updates between backtracking checks (the study: 30).
      tolerance: relative drop that triggers backtracking, >= 0 (the study: 0.2).
      elite_reference: 'worst', 'mean' or 'random' elite score to compare with.
      tabu: explore from an elite with untried sign patterns (needs D <= 12 and two factors).
      preset: PBT preset for the truncation steps ('zhang2021' or 'ray_tune').
      **overrides: any `PBTConfig` field.

    Returns:
      A `Tuner`: `init(key, example_member_state)` needs one member's state (no population
      axis) to shape the archive; `update` needs `member_states` ([N, ...]).
    """
    if population_size < 1:
        raise ValueError(f"population_size={population_size} must be >= 1")
    if not 0.0 < elite_ratio <= 1.0:
        raise ValueError(f"elite_ratio={elite_ratio} must be in (0, 1]")
    if delta_t < 1:
        raise ValueError(f"delta_t={delta_t} must be >= 1")
    if not tolerance >= 0.0:
        raise ValueError(f"tolerance={tolerance} must be >= 0 (a relative drop, e.g. 0.2)")
    if elite_reference not in ELITE_REFERENCES:
        raise ValueError(f"elite_reference={elite_reference!r}; valid: {ELITE_REFERENCES}")
    c = pbt_config(preset, **overrides)
    if tabu and (space.dim > MAX_TABU_DIM or len(c.perturb_factors) != 2):
        raise ValueError(
            f"tabu exploration needs D <= {MAX_TABU_DIM} (got {space.dim}) and two perturb "
            f"factors (got {c.perturb_factors}); pass tabu=False"
        )
    n, d = population_size, space.dim
    k = max(1, math.ceil(round(elite_ratio * n, 9)))
    num_patterns = 2**d if tabu else 1
    n_top, n_bottom = quantile_counts(n, c.quantile, c.quantile_rule)
    factors = jnp.asarray(c.perturb_factors, jnp.float32)

    def init(key: jax.Array, example_member_state: Any = None) -> PBTBTState:
        if example_member_state is None:
            raise ValueError("pbt_bt init needs example_member_state (one member's state)")
        hparams = initial_hparams(key, space, n, c)
        archive = Archive(
            score=jnp.full((k,), -jnp.inf, jnp.float32),
            member=jnp.full((k,), -1, jnp.int32),
            step=jnp.zeros((k,), jnp.int32),
            hparams=jnp.zeros((k, d), jnp.float32),
            tried=jnp.zeros((k, num_patterns), bool),
            states=jax.tree.map(
                lambda x: jnp.zeros((k,) + jnp.shape(x), jnp.asarray(x).dtype),
                example_member_state,
            ),
        )
        return PBTBTState(jnp.int32(0), start(hparams, c.first_step_trials), archive)

    def explore_from_elites(key, archive, backtrack, elite):
        """Hyperparameters for members restarting from `elite`, and the updated tabu record."""
        k_coin, k_order, k_new, k_explore = jax.random.split(key, 4)
        base = archive.hparams[elite]
        if not tabu:
            return explore(k_explore, space, base, c), archive.tried
        wants = backtrack & (jax.random.uniform(k_coin, (n,)) >= c.resample_probability)
        # occurrence of each member among earlier ones drawing patterns from the same elite
        earlier = jnp.tril(jnp.ones((n, n), bool), -1)
        occ = jnp.sum(earlier & wants[None, :] & (elite[None, :] == elite[:, None]), axis=1)
        noise = jnp.where(archive.tried, jnp.inf, jax.random.uniform(k_order, (k, num_patterns)))
        order = jnp.argsort(noise, axis=1)
        untried = num_patterns - jnp.sum(archive.tried, axis=1)
        use = wants & (occ < untried[elite])
        pattern = order[elite, jnp.minimum(occ, num_patterns - 1)]
        bits = (pattern[:, None] >> jnp.arange(d)) & 1
        moved = jnp.clip(base * factors[bits], 0.0, 1.0)
        fresh = space.sample_unit(k_new, n)
        rows = jnp.where(use, elite, k)  # out of range: dropped
        tried = archive.tried.at[rows, pattern].set(True, mode="drop")
        return jnp.where(use[:, None], moved, fresh), tried

    def update(key, state, fitness, member_states=None):
        if member_states is None:
            raise ValueError("pbt_bt update needs member_states to archive elite checkpoints")
        chex.assert_shape(fitness, (n,))
        k_exploit, k_explore, k_elite, k_bt = jax.random.split(key, 4)
        del key
        step = state.step + 1
        hp = state.decision.hparams
        archive = insert(state.archive, fitness, member_states, hp, step)

        # PBT truncation (used between checks)
        source, copies = truncation(k_exploit, fitness, n_top, n_bottom)
        pbt_hp = jnp.where(copies[:, None], explore(k_explore, space, hp[source], c), hp)

        # backtracking (used at checks)
        elite_ok = archive.score > -jnp.inf
        logits = jnp.where(elite_ok, 0.0, -jnp.inf)
        elite = jax.random.categorical(
            k_elite, jnp.where(jnp.any(elite_ok), logits, 0.0), shape=(n,)
        )
        if elite_reference == "worst":
            ref = jnp.min(jnp.where(elite_ok, archive.score, jnp.inf))
        elif elite_reference == "mean":
            ref = jnp.sum(jnp.where(elite_ok, archive.score, 0.0)) / jnp.maximum(
                jnp.sum(elite_ok), 1
            )
        else:
            ref = archive.score[elite]
        clean, _ = sanitize_fitness(fitness)
        rel = (clean - ref) / jnp.maximum(jnp.abs(ref), 1e-8)
        check = step % delta_t == 0
        backtrack = check & jnp.any(elite_ok) & (rel < -tolerance)
        bt_hp, tried = explore_from_elites(k_bt, archive, backtrack, elite)
        archive = archive._replace(tried=tried)

        idx = jnp.arange(n, dtype=jnp.int32)
        decision = Decision(
            source=jnp.where(check, jnp.where(backtrack, n + elite.astype(jnp.int32), idx), source),
            restart=jnp.zeros((n,), bool),
            hparams=jnp.where(check, jnp.where(backtrack[:, None], bt_hp, hp), pbt_hp),
            changed=jnp.where(check, backtrack, copies),
            budget=jnp.full((n,), c.step_trials, jnp.int32),
        )
        return PBTBTState(step, decision, archive), decision

    return Tuner(init, update, lambda state: state.archive.states, space, n)
