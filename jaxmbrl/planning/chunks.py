"""Candidate chunks of PETS' CEM (Chua et al., NeurIPS 2018): how many candidates run, and how.

A planner compiled for `max_population` candidates evaluates an agent's `population`
(traced) in chunks of `chunk` (static) candidates: a loop with the traced trip count
ceil(population / chunk) writes each chunk's costs into a buffer pre-filled with +inf, so
chunks made only of padded candidates never run. One rule, `executed_population`, counts
what runs; the planner's `padded_work` and the accounting of `jaxmbrl.profiling.flops`
share it.
"""

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp


def chunk_size(max_population: int, candidate_chunk: int | None) -> int:
    """Candidates per cost evaluation: `candidate_chunk` capped at `max_population` (None: all)."""
    if candidate_chunk is None:
        return int(max_population)
    return min(int(candidate_chunk), int(max_population))


def executed_population(population: Any, chunk: int) -> Any:
    """Candidates a chunked planner evaluates for `population`: ceil(population / chunk) * chunk.

    Works on Python/numpy numbers and traced jnp arrays alike.
    """
    return (population + chunk - 1) // chunk * chunk


def evaluate(
    cost_fn: Callable, key: jax.Array, cands: jax.Array, horizon: jax.Array, num_chunks, chunk
) -> jax.Array:
    """Costs [max_population] of a plain cost function on the first `num_chunks` chunks of
    `cands` [max_population, H, A]; the candidates of the other chunks stay +inf, never run.

    cost_fn(key, actions [chunk, max_horizon, A], horizon, first) -> [chunk], `first` the
    traced index of the chunk's first candidate.
    """
    max_p = cands.shape[0]

    def costs_of(actions, first):
        costs = cost_fn(key, actions, horizon, first)
        chex.assert_shape(costs, (actions.shape[0],))
        return costs.astype(jnp.float32)

    if chunk >= max_p:  # one chunk: no loop
        return costs_of(cands, jnp.asarray(0, jnp.int32))
    padded_p = executed_population(max_p, chunk)  # room for the last chunk
    cands = jnp.concatenate(
        [cands, jnp.zeros((padded_p - max_p,) + cands.shape[1:], cands.dtype)], axis=0
    )

    def one_chunk(j, costs):
        first = (j * chunk).astype(jnp.int32)
        actions = jax.lax.dynamic_slice_in_dim(cands, first, chunk)
        return jax.lax.dynamic_update_slice_in_dim(costs, costs_of(actions, first), first, 0)

    costs = jnp.full((padded_p,), jnp.inf, jnp.float32)
    return jax.lax.fori_loop(0, num_chunks, one_chunk, costs)[:max_p]
