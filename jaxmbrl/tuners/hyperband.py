"""Hyperband (Li et al., JMLR 2018, Algorithm 1) on a fixed population of N slots.

Bracket arithmetic (budgets in trials, R = max_budget / min_budget, min_budget = 1 in Li et
al.): s_max = floor(log_eta(R)), computed with integer powers so R = 243, eta = 3 gives 5;
B = (s_max + 1) R; bracket s = s_max..0 starts n = ceil(B / R * eta^s / (s + 1)) configurations
at r = R eta^-s; rung i runs n_i = floor(n eta^-i) configurations for r_i = r eta^i trials in
total (scaled by min_budget, rounded to whole trials) and the best floor(n_i / eta) go on.
This job structure is static and built on the host; which configurations are promoted is
decided on device by `update`.

Running it on N slots: every update is one trial of every busy slot; `Decision.budget` is the
number of trials left in the slot's current job (0: idle). A free slot takes the next ready job
in bracket order (rung i of a bracket is ready when rung i - 1 has finished). Promoted
configurations continue training from their own checkpoint, as successive halving with
resumption (Li et al. Sec. 3 allow either): the slot that finished a job keeps its state until
the rung is decided, and the promoted configuration then runs r_i - r_{i-1} more trials in
that slot (`source` = itself, `restart` False). If free slots are short of work they may take
over a slot still holding an undecided result; a configuration whose checkpoint was so lost is
retrained from scratch for r_i trials if promoted (`restart` True). Either way the result
recorded for a rung is after exactly r_i trials of training; with N >= the largest n every
promotion continues. Brackets are run in order, rungs of one bracket before the next bracket,
`num_iterations` times. Configurations are sampled uniformly from the prior at `init`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.tuners.base import Decision, Tuner, no_archive
from jaxmbrl.tuners.space import SearchSpace

PENDING, RUNNING, DONE = 0, 1, 2


def brackets(max_budget: int, eta: int = 3, min_budget: int = 1) -> list[list[tuple[int, int]]]:
    """Li et al.'s brackets s = s_max..0, each a list of rungs (n_i configurations, r_i trials)."""
    if int(eta) != eta or eta < 2:
        raise ValueError(f"eta={eta} must be an integer >= 2")
    if int(min_budget) != min_budget or min_budget < 1:
        raise ValueError(f"min_budget={min_budget} must be an integer >= 1")
    if int(max_budget) != max_budget or max_budget < min_budget:
        raise ValueError(f"max_budget={max_budget} must be an integer >= min_budget={min_budget}")
    ratio = Fraction(int(max_budget), int(min_budget))
    s_max = 0
    while eta ** (s_max + 1) <= ratio:  # exact: floor(log_eta(R)) without float error
        s_max += 1
    out = []
    for s in range(s_max, -1, -1):
        n = -(-((s_max + 1) * eta**s) // (s + 1))  # ceil(B / R * eta^s / (s + 1))
        rungs = []
        for i in range(s + 1):
            r = max(1, round(Fraction(int(max_budget)) * Fraction(eta) ** (i - s)))
            rungs.append((n // eta**i, int(r)))
        out.append(rungs)
    return out


class HyperbandJobs(NamedTuple):
    """Static job structure, one entry per (configuration, rung) job (kept for the record)."""

    iteration: jax.Array  # int32 [J]
    bracket: jax.Array  # int32 [J]: s
    rung: jax.Array  # int32 [J]: i
    budget: jax.Array  # int32 [J]: r_i, total trials of training when the result is taken


class HyperbandState(NamedTuple):
    step: jax.Array  # int32: updates (trials) so far
    decision: Decision
    configs: jax.Array  # float32 [C, D]: unit hparams of the rung-0 configurations
    job_config: jax.Array  # int32 [J]: configuration id (-1 until assigned)
    job_status: jax.Array  # int32 [J]: PENDING, RUNNING or DONE
    job_result: jax.Array  # float32 [J]: fitness at the end of the job (NaN until done)
    job_slot: jax.Array  # int32 [J]: slot that ran it
    job_continued: jax.Array  # bool [J]: resumed the promoted configuration's checkpoint
    job_end: jax.Array  # int32 [J]: update at which it finished
    slot_job: jax.Array  # int32 [N]: running job, -1 free
    slot_held: jax.Array  # int32 [N]: finished job whose checkpoint the slot holds, -1 none
    slot_remaining: jax.Array  # int32 [N]: trials left in the running job
    jobs: HyperbandJobs


def hyperband(
    space: SearchSpace,
    population_size: int,
    max_budget: int,
    *,
    eta: int = 3,
    min_budget: int = 1,
    num_iterations: int = 1,
) -> Tuner:
    """Hyperband over `space` on `population_size` slots, budgets in trials.

    Args:
      space: the search space.
      population_size: N, the number of slots trained side by side.
      max_budget: R, the most trials one configuration gets.
      eta: halving rate (the study: 3, some runs 2).
      min_budget: the smallest budget (Li et al.: 1).
      num_iterations: how many times the whole set of brackets is run.

    Returns:
      A `Tuner`; `update` must be called after every trial and ignores `member_states`.
      `history(state)` lists the evaluated (configuration, budget, result).
    """
    if population_size < 1:
        raise ValueError(f"population_size={population_size} must be >= 1")
    if num_iterations < 1:
        raise ValueError(f"num_iterations={num_iterations} must be >= 1")
    plan = brackets(max_budget, eta, min_budget)
    rows, group_size, group_prev, n_configs = [], [], [], 0
    for it in range(num_iterations):
        for bracket in plan:
            s = len(bracket) - 1
            for i, (n_i, r_i) in enumerate(bracket):
                g = len(group_size)
                group_size.append(n_i)
                group_prev.append(g - 1 if i > 0 else -1)
                extra = r_i - bracket[i - 1][1] if i > 0 else r_i
                for p in range(n_i):
                    cfg = n_configs + p if i == 0 else -1
                    rows.append((it, s, i, r_i, extra, g, p, cfg))
            n_configs += bracket[0][0]
    it_, s_, i_, budget, extra, group, pos, cfg0 = (
        np.array(c, np.int32) for c in zip(*rows, strict=True)
    )
    n, num_jobs, num_groups = population_size, len(rows), len(group_size)
    group_size = jnp.asarray(group_size, jnp.int32)
    job_prev = jnp.asarray(np.array(group_prev, np.int32)[group])
    group, pos, budget_j, extra_j = map(jnp.asarray, (group, pos, budget, extra))
    jidx = jnp.arange(num_jobs, dtype=jnp.int32)
    sidx = jnp.arange(n, dtype=jnp.int32)
    jobs = HyperbandJobs(*map(jnp.asarray, (it_, s_, i_, budget)))

    def assign(state: HyperbandState) -> HyperbandState:
        """Give free slots the ready jobs: promotions to their holders, the rest in order."""
        done = state.job_status == DONE
        group_done = jax.ops.segment_sum(done.astype(jnp.int32), group, num_groups) == group_size
        ready = (state.job_status == PENDING) & ((job_prev < 0) | group_done[job_prev])
        # rank of each finished job within its rung: 0 = best, invalid last, ties by index
        res = jnp.where(done & jnp.isfinite(state.job_result), state.job_result, -jnp.inf)
        better = (res[None, :] > res[:, None]) | (
            (res[None, :] == res[:, None]) & (jidx[None, :] < jidx[:, None])
        )
        rank = jnp.sum((group[None, :] == group[:, None]) & better, axis=1)
        # the j-th job of rung i promotes the configuration ranked j in rung i - 1
        parent = jnp.argmax(
            (group[None, :] == job_prev[:, None]) & (rank[None, :] == pos[:, None]), 1
        )
        parent = jnp.where(job_prev >= 0, parent, -1)
        config = jnp.where(job_prev >= 0, state.job_config[jnp.maximum(parent, 0)], cfg0)

        free = state.slot_job < 0
        held = state.slot_held
        match = (free & (held >= 0))[:, None] & (ready & (parent >= 0))[None, :]
        match &= parent[None, :] == held[:, None]
        cont = jnp.any(match, axis=1)
        cont_job = jnp.argmax(match, axis=1)
        ready_b = ready & ~jnp.any(match, axis=0)
        free_b = free & ~cont
        needed = (held >= 0) & ~group_done[group[jnp.maximum(held, 0)]]
        prio = jnp.where(free_b, needed.astype(jnp.int32), 2)  # evict undecided holders last
        slot_order = jnp.argsort(prio * n + sidx)
        job_order = jnp.argsort(jnp.where(ready_b, jidx, num_jobs + jidx))
        job_order = jnp.pad(job_order, (0, max(0, n - num_jobs)), constant_values=num_jobs)[:n]
        take = sidx < jnp.minimum(jnp.sum(free_b), jnp.sum(ready_b))
        new_job = jnp.full((n,), -1, jnp.int32).at[slot_order].set(jnp.where(take, job_order, -1))
        fresh = new_job >= 0
        job = jnp.where(cont, cont_job, new_job)
        assigned = cont | fresh
        target = jnp.where(assigned, job, num_jobs)  # out of range: dropped
        job_config = state.job_config.at[target].set(
            config[jnp.minimum(job, num_jobs - 1)], mode="drop"
        )
        cfg = job_config[jnp.maximum(job, 0)]
        remaining = jnp.where(
            cont, extra_j[jnp.maximum(job, 0)], jnp.where(fresh, budget_j[jnp.maximum(job, 0)], 0)
        )
        remaining = jnp.where(assigned, remaining, state.slot_remaining)
        hparams = jnp.where(
            assigned[:, None], state.configs[jnp.maximum(cfg, 0)], state.decision.hparams
        )
        decision = Decision(
            source=sidx,
            restart=fresh,
            hparams=hparams,
            changed=fresh,
            budget=remaining,
        )
        return state._replace(
            decision=decision,
            job_config=job_config,
            job_status=state.job_status.at[target].set(RUNNING, mode="drop"),
            job_slot=state.job_slot.at[target].set(sidx, mode="drop"),
            job_continued=state.job_continued.at[target].set(cont, mode="drop"),
            slot_job=jnp.where(assigned, job, state.slot_job),
            slot_held=jnp.where(assigned, -1, held),
            slot_remaining=remaining,
        )

    def init(key: jax.Array, example_member_state: Any = None) -> HyperbandState:
        del example_member_state
        configs = space.sample_unit(key, n_configs)
        idle = Decision(
            source=sidx,
            restart=jnp.zeros((n,), bool),
            hparams=space.default_unit(n),
            changed=jnp.zeros((n,), bool),
            budget=jnp.zeros((n,), jnp.int32),
        )
        state = HyperbandState(
            step=jnp.int32(0),
            decision=idle,
            configs=configs,
            job_config=jnp.full((num_jobs,), -1, jnp.int32),
            job_status=jnp.full((num_jobs,), PENDING, jnp.int32),
            job_result=jnp.full((num_jobs,), jnp.nan, jnp.float32),
            job_slot=jnp.full((num_jobs,), -1, jnp.int32),
            job_continued=jnp.zeros((num_jobs,), bool),
            job_end=jnp.full((num_jobs,), -1, jnp.int32),
            slot_job=jnp.full((n,), -1, jnp.int32),
            slot_held=jnp.full((n,), -1, jnp.int32),
            slot_remaining=jnp.zeros((n,), jnp.int32),
            jobs=jobs,
        )
        return assign(state)

    def update(key, state, fitness, member_states=None):
        del key, member_states
        chex.assert_shape(fitness, (n,))
        step = state.step + 1
        running = state.slot_job >= 0
        remaining = jnp.where(running, state.slot_remaining - 1, 0)
        finished = running & (remaining <= 0)
        target = jnp.where(finished, state.slot_job, num_jobs)
        state = state._replace(
            step=step,
            job_result=state.job_result.at[target].set(fitness.astype(jnp.float32), mode="drop"),
            job_status=state.job_status.at[target].set(DONE, mode="drop"),
            job_end=state.job_end.at[target].set(step, mode="drop"),
            slot_job=jnp.where(finished, -1, state.slot_job),
            slot_held=jnp.where(finished, state.slot_job, state.slot_held),
            slot_remaining=remaining,
        )
        state = assign(state)
        return state, state.decision

    return Tuner(init, update, no_archive, space, n)


def is_done(state: HyperbandState) -> jax.Array:
    """True once every job of every bracket has finished."""
    return jnp.all(state.job_status == DONE)


def history(state: HyperbandState) -> list[dict[str, Any]]:
    """Host-side list of finished jobs in completion order: iteration, bracket, rung, config,
    budget (total trials trained), result, slot, continued (resumed vs retrained), job
    index, hparams."""
    s = jax.tree.map(np.asarray, state)
    done = np.flatnonzero(s.job_status == DONE)
    done = done[np.lexsort((done, s.job_end[done]))]
    return [
        dict(
            iteration=int(s.jobs.iteration[j]),
            bracket=int(s.jobs.bracket[j]),
            rung=int(s.jobs.rung[j]),
            config=int(s.job_config[j]),
            budget=int(s.jobs.budget[j]),
            result=float(s.job_result[j]),
            slot=int(s.job_slot[j]),
            continued=bool(s.job_continued[j]),
            job=int(j),
            hparams=s.configs[s.job_config[j]],
        )
        for j in done
    ]


def incumbent(state: HyperbandState) -> tuple[float, np.ndarray]:
    """Host-side: best valid result among finished jobs at the largest budget reached."""
    s = jax.tree.map(np.asarray, state)
    ok = (s.job_status == DONE) & np.isfinite(s.job_result)
    if not ok.any():
        return -math.inf, np.full(s.configs.shape[1], np.nan, np.float32)
    top = ok & (s.jobs.budget == s.jobs.budget[ok].max())
    j = np.flatnonzero(top)[np.argmax(s.job_result[top])]
    return float(s.job_result[j]), s.configs[s.job_config[j]]
