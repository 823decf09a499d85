"""Batching guard for MJX on CPU (used with the PETS environments of Zhang et al. 2021).

A vmapped MJX step at batch 1024 hung on a 2-core CPU host: both XLA threads waited
forever inside the batched LAPACK Cholesky of MJX's Newton solver; batches up to 256 ran
fine. ``chunked_vmap`` vmaps over chunks of at most ``max_chunk`` members and runs the
chunks one after another (``lax.map(..., batch_size=max_chunk)``), so no batched LAPACK
call sees more than ``max_chunk`` matrices. ``BatchedEnv`` applies it to an environment's
reset and step.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxmbrl.batching import batched_map

DEFAULT_MAX_CHUNK = 256


def chunked_vmap(fn: Callable, max_chunk: int = DEFAULT_MAX_CHUNK) -> Callable:
    """``jax.vmap(fn)`` over the leading axis of all arguments, in chunks of <= max_chunk.

    Args:
      fn: function of unbatched pytrees.
      max_chunk: largest batch handed to one vmapped call.

    Returns:
      A function of batched pytrees (common leading size B) with the same result as
      ``jax.vmap(fn)``: one vmap for B <= max_chunk, else ``lax.map`` over chunks.
    """
    if not isinstance(max_chunk, int) or max_chunk < 1:
        raise ValueError(f"max_chunk={max_chunk!r}; must be an integer >= 1")
    # max_chunk == 1 would be a sequential loop without vmap: same result, fine.
    return batched_map(fn, max_chunk)


class BatchedEnv:
    """An environment whose ``reset(keys[B])`` and ``step(states[B], actions[B])`` batch.

    Only batching: everything else (sizes, reward_fn, ...) is the wrapped env's.
    """

    def __init__(self, env, max_chunk: int = DEFAULT_MAX_CHUNK):
        self.env = env
        self.max_chunk = max_chunk
        self.reset = chunked_vmap(env.reset, max_chunk)
        self.step = chunked_vmap(env.step, max_chunk)

    def __getattr__(self, name: str):
        if name == "env":  # not yet set (e.g. during unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.env, name)
