"""CEM (PETS, Chua et al., NeurIPS 2018) with (iteration, chunk, step) as ONE loop.

A vmapped `while_loop` runs to the largest trip count among the agents. With nested loops
over iterations, candidate chunks and horizon steps, a batch of agents pays max(iterations) x
max(chunks) x max(horizon); with one loop of iterations x chunks x horizon ticks it pays the
largest product, and a population sorted by that product (`jaxmbrl.population`) puts agents
of similar work together. One tick is one model step of one chunk: t == 0 samples the
chunk's candidates and starts its rollout, t == horizon - 1 stores its costs, the last tick
of an iteration updates the CEM distribution. Alone these are real `lax.cond` branches;
under vmap they become selects (computed every tick, kept where due). A small table of the
rollout noise is drawn before the loop instead of tick by tick (`PREDRAW_BYTES`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class SteppedCost(NamedTuple):
    """A cost evaluated one step at a time (CEM then runs one flat loop; see `make_cem`)."""

    # start(key, actions [C, max_horizon, A], first) -> carry; row i is candidate first + i
    start: Callable[[jax.Array, jax.Array, jax.Array], Any]
    # step(carry, t, eps=None) -> carry after step t (steps 0 .. horizon - 1 are run, in
    # order); eps: step t's noise for the carry's rows, a slice of `noise`'s table
    step: Callable[..., Any]
    # costs(carry) -> [C]
    costs: Callable[[Any], jax.Array]
    # noise(key, actions [C, max_horizon, A]) -> [max_horizon, M, C, ...]: every step's noise
    # for candidates 0 .. C - 1 of a rollout started with `key`, as step draws it; None: none
    noise: Callable[[jax.Array, jax.Array], jax.Array] | None = None


# The rollout noise of every (iteration, step, candidate) is drawn before the loop, as one
# batch, when its table is at most this big (the small presets: a fifth of their op time was
# small per-tick draws); otherwise each tick draws its own. Before the loop, not in the t == 0
# branch: under vmap that branch is a select that would draw the horizon's noise every tick.
PREDRAW_BYTES = 4 << 20


def run(
    key: jax.Array,
    cost: SteppedCost,
    update: Callable,
    sample_rows: Callable,
    mean0: jax.Array,
    init_var: jax.Array,
    *,
    horizon: jax.Array,
    iterations: jax.Array,
    num_chunks: jax.Array,
    chunk: int,
    padded_p: int,
    max_iterations: int | None = None,
) -> tuple[jax.Array, ...]:
    """CEM's iterations as one loop of iterations x num_chunks x horizon ticks.

    Args:
      key: the planner's key; iteration `it` samples and costs with the keys of
        split(fold_in(key, it)), as CEM's nested loops do.
      cost: the stepped cost.
      update: (mean, var, cands [padded_p, H, A], costs [padded_p]) -> (mean, var, plan,
        best cost, mean elite cost), CEM's update at the end of an iteration.
      sample_rows: (key, mean, var, first, count) -> candidates first .. first + count - 1.
      mean0, init_var: [H, A] initial mean and variance.
      horizon, iterations, num_chunks: traced trip counts of one agent.
      chunk, padded_p: static chunk size and num_chunks_max x chunk.
      max_iterations: static bound of `iterations`; with it, a cost's noise table of at
        most PREDRAW_BYTES is drawn before the loop (the same numbers as per tick).

    Returns:
      (mean, var, plan, best cost, mean elite cost) after the last iteration.
    """
    per_iteration = num_chunks * horizon
    cands0 = jnp.zeros((padded_p,) + mean0.shape, jnp.float32)
    inf = jnp.asarray(jnp.inf, jnp.float32)
    rollout0 = cost.start(key, cands0[:chunk], jnp.asarray(0, jnp.int32))
    costs0 = jnp.full((padded_p,), jnp.inf, jnp.float32)
    init = (jnp.asarray(0, jnp.int32), mean0, init_var, cands0, costs0, rollout0)
    init += (mean0, inf, inf)

    def iteration_keys(it):  # (sample key, cost key) of iteration `it`
        return jax.random.split(jax.random.fold_in(key, it))

    table = None
    if cost.noise is not None and max_iterations is not None:
        one = jax.eval_shape(cost.noise, key, cands0)  # one iteration's table
        if max_iterations * math.prod(one.shape) * one.dtype.itemsize <= PREDRAW_BYTES:
            cost_keys = jax.vmap(lambda it: iteration_keys(it)[1])(jnp.arange(max_iterations))
            table = jax.vmap(cost.noise, (0, None))(cost_keys, cands0)  # [I, H, M, P, ...]

    def body(carry):
        tick, mean, var, cands, costs, rollout, plan, best, elite_cost = carry
        it, rest = tick // per_iteration, tick % per_iteration
        first = (rest // horizon * chunk).astype(jnp.int32)
        t = rest % horizon

        def start(args):
            # Keys derived here, not every tick: alone this branch runs once per chunk.
            sample_key, cost_key = iteration_keys(it)
            cands, _ = args
            chunk_cands = sample_rows(sample_key, mean, var, first, chunk)
            cands = jax.lax.dynamic_update_slice_in_dim(cands, chunk_cands, first, 0)
            return cands, cost.start(cost_key, chunk_cands, first)

        cands, rollout = jax.lax.cond(t == 0, start, lambda args: args, (cands, rollout))
        if table is None:
            rollout = cost.step(rollout, t)
        else:
            at_step = table[it, t]  # [M, padded_p, ...]
            rollout = cost.step(rollout, t, jax.lax.dynamic_slice_in_dim(at_step, first, chunk, 1))
        costs = jax.lax.cond(
            t == horizon - 1,
            lambda c: jax.lax.dynamic_update_slice_in_dim(
                c, cost.costs(rollout).astype(jnp.float32), first, 0
            ),
            lambda c: c,
            costs,
        )
        mean, var, plan, best, elite_cost = jax.lax.cond(
            rest == per_iteration - 1,
            lambda args: update(args[0], args[1], cands, costs),
            lambda args: args,
            (mean, var, plan, best, elite_cost),
        )
        return tick + 1, mean, var, cands, costs, rollout, plan, best, elite_cost

    out = jax.lax.while_loop(lambda c: c[0] < iterations * per_iteration, body, init)
    return out[1], out[2], out[6], out[7], out[8]
