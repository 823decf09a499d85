"""Candidate chunks of PETS' CEM (Chua et al., NeurIPS 2018): how many candidates run, and how.

A planner compiled for `max_population` candidates evaluates an agent's `population`
(traced) in chunks of `chunk` (static) candidates, so chunks made only of padded candidates
never run: ceil(population / chunk) chunks. That saves work for small populations, but on a
CPU small chunks cost time of their own (5x the loop ticks and 1/5 of the rows per matrix
product at the paper's 500 candidates in chunks of 100). So when the chunks would run at
least `max_population` candidates anyway ("covered": chunking saves nothing), the planner
evaluates all `max_population` at once instead, as an unchunked planner does. Both ways are
loops with traced trip counts, one of them zero: alone only one runs; vmapped over agents,
a group with both kinds runs both (each to its largest trip count).

One rule, `executed_population`, counts what runs; the planner's `padded_work` and the
accounting of `jaxmbrl.profiling.flops` share it.
"""

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np


def chunk_size(max_population: int, candidate_chunk: int | None) -> int:
    """Candidates per cost evaluation: `candidate_chunk` capped at `max_population` (None: all)."""
    if candidate_chunk is None:
        return int(max_population)
    return min(int(candidate_chunk), int(max_population))


def covered(population: Any, chunk: int, max_population: int) -> Any:
    """True where whole chunks would run >= max_population candidates (numpy or jnp)."""
    return (population + chunk - 1) // chunk * chunk >= max_population


def executed_population(population: Any, chunk: int, max_population: int) -> Any:
    """Candidates a planning step evaluates: min(ceil(population / chunk) x chunk, max_population).

    Works on Python/numpy numbers and traced jnp arrays alike.
    """
    rounded = (population + chunk - 1) // chunk * chunk
    if isinstance(rounded, jax.Array):
        return jnp.minimum(rounded, max_population)
    return np.minimum(rounded, max_population)


def trip_counts(population: jax.Array, chunk: int, max_population: int) -> tuple:
    """(wide, num_chunks) int32: 1, 0 when covered (all candidates at once), else 0, chunks."""
    is_covered = covered(population, chunk, max_population)
    num_chunks = (population + chunk - 1) // chunk
    if chunk >= max_population:  # unchunked: the wide evaluation is the only one
        return jnp.asarray(1, jnp.int32), jnp.asarray(0, jnp.int32)
    wide = jnp.where(is_covered, 1, 0).astype(jnp.int32)
    return wide, jnp.where(is_covered, 0, num_chunks).astype(jnp.int32)


def evaluate(
    cost_fn: Callable, key: jax.Array, cands: jax.Array, horizon: jax.Array, population, chunk
) -> jax.Array:
    """Costs [max_population] of a plain cost function, the candidates that do not run +inf.

    cost_fn(key, actions [C, max_horizon, A], horizon, first) -> [C] is called on all
    candidates at once when covered, else on each of the ceil(population / chunk) chunks.
    """
    max_p = cands.shape[0]

    def costs_of(actions, first):
        costs = cost_fn(key, actions, horizon, first)
        chex.assert_shape(costs, (actions.shape[0],))
        return costs.astype(jnp.float32)

    zero = jnp.asarray(0, jnp.int32)
    if chunk >= max_p:
        return costs_of(cands, zero)
    wide, num_chunks = trip_counts(population, chunk, max_p)
    costs = jnp.full((max_p,), jnp.inf, jnp.float32)
    costs = jax.lax.fori_loop(0, wide, lambda _, c: costs_of(cands, zero), costs)
    padded_p = -(-max_p // chunk) * chunk  # room for the last chunk
    cands = jnp.concatenate(
        [cands, jnp.zeros((padded_p - max_p,) + cands.shape[1:], cands.dtype)], axis=0
    )
    costs = jnp.concatenate([costs, jnp.full((padded_p - max_p,), jnp.inf, jnp.float32)])

    def one_chunk(j, costs):
        first = (j * chunk).astype(jnp.int32)
        actions = jax.lax.dynamic_slice_in_dim(cands, first, chunk)
        return jax.lax.dynamic_update_slice_in_dim(costs, costs_of(actions, first), first, 0)

    return jax.lax.fori_loop(0, num_chunks, one_chunk, costs)[:max_p]
