"""Ring-buffer replay of environment transitions, as a pytree with pure functions.

PETS (Chua et al., NeurIPS 2018) trains its dynamics model on every transition seen so far;
this buffer holds them in fixed-size arrays so that a population of agents can be vmapped.
Valid transitions always occupy rows [0, size): rows are written contiguously from
`position` (masked rows are skipped, not stored), and once the buffer is full the oldest
rows are overwritten in ring order.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp


class ReplayBuffer(NamedTuple):
    obs: jax.Array  # [C, O] float32
    action: jax.Array  # [C, A] float32
    next_obs: jax.Array  # [C, O] float32
    reward: jax.Array  # [C] float32
    done: jax.Array  # [C] float32
    size: jax.Array  # int32 [], number of valid rows (min(total added, C))
    position: jax.Array  # int32 [], next row to write


def replay_init(capacity: int, obs_size: int, action_size: int) -> ReplayBuffer:
    """Returns an empty buffer with room for `capacity` transitions."""
    for name, value in (("capacity", capacity), ("obs_size", obs_size)):
        if int(value) < 1:
            raise ValueError(f"{name}={value} must be >= 1")
    if int(action_size) < 1:
        raise ValueError(f"action_size={action_size} must be >= 1")
    f32 = jnp.float32
    return ReplayBuffer(
        obs=jnp.zeros((capacity, obs_size), f32),
        action=jnp.zeros((capacity, action_size), f32),
        next_obs=jnp.zeros((capacity, obs_size), f32),
        reward=jnp.zeros((capacity,), f32),
        done=jnp.zeros((capacity,), f32),
        size=jnp.zeros((), jnp.int32),
        position=jnp.zeros((), jnp.int32),
    )


def replay_add(
    buffer: ReplayBuffer,
    obs: jax.Array,
    action: jax.Array,
    next_obs: jax.Array,
    reward: jax.Array,
    done: jax.Array,
    mask: jax.Array | None = None,
) -> ReplayBuffer:
    """Adds a whole trial of T transitions; rows with mask False are dropped.

    Kept rows are packed contiguously in ring order starting at `buffer.position`. If more
    than C rows are kept, only the last C of them are stored (the ring would overwrite
    the earlier ones anyway), so the scatter never writes one slot twice.
    """
    capacity, obs_size = buffer.obs.shape
    action_size = buffer.action.shape[1]
    chex.assert_rank(obs, 2)
    steps = obs.shape[0]
    chex.assert_shape(obs, (steps, obs_size))
    chex.assert_shape(next_obs, (steps, obs_size))
    chex.assert_shape(action, (steps, action_size))
    chex.assert_shape([reward, done], (steps,))
    if mask is None:
        mask = jnp.ones((steps,), bool)
    chex.assert_shape(mask, (steps,))
    mask = mask.astype(bool)

    rank = jnp.cumsum(mask.astype(jnp.int32)) - 1  # position of each kept row among kept rows
    num_kept = jnp.sum(mask.astype(jnp.int32))
    keep = mask & (rank >= num_kept - capacity)
    dest = jnp.where(keep, (buffer.position + rank) % capacity, capacity)  # capacity: dropped

    def write(store, rows):
        return store.at[dest].set(rows.astype(store.dtype), mode="drop")

    return ReplayBuffer(
        obs=write(buffer.obs, obs),
        action=write(buffer.action, action),
        next_obs=write(buffer.next_obs, next_obs),
        reward=write(buffer.reward, reward),
        done=write(buffer.done, done),
        size=jnp.minimum(buffer.size + num_kept, capacity).astype(jnp.int32),
        position=((buffer.position + num_kept) % capacity).astype(jnp.int32),
    )


def replay_sample(key: chex.PRNGKey, buffer: ReplayBuffer, batch_size: int) -> dict:
    """Draws `batch_size` transitions uniformly, with replacement, from rows [0, size).

    Returns a dict with obs, action, next_obs, reward, done. On an empty buffer every index
    is 0 (an all-zero row); callers should not sample before the first add.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return dict(
        obs=buffer.obs[idx],
        action=buffer.action[idx],
        next_obs=buffer.next_obs[idx],
        reward=buffer.reward[idx],
        done=buffer.done[idx],
    )
