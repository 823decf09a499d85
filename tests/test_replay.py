"""Tests of the ring-buffer replay (jaxmbrl.replay)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import replay

OBS, ACT = 2, 1


def trial(start, steps):
    """Transitions whose every field encodes its global index `start + t`."""
    ids = np.arange(start, start + steps, dtype=np.float32)
    return dict(
        obs=np.stack([ids, -ids], axis=1),
        action=ids[:, None] * 10.0,
        next_obs=np.stack([ids + 0.5, -ids], axis=1),
        reward=ids * 2.0,
        done=(ids % 2).astype(np.float32),
    )


add = jax.jit(replay.replay_add)


def stored_ids(buffer):
    return np.asarray(buffer.obs[: int(buffer.size), 0])


def test_fills_then_overwrites_oldest_in_ring_order():
    buffer = replay.replay_init(5, OBS, ACT)
    buffer = add(buffer, **trial(0, 3))
    assert (int(buffer.size), int(buffer.position)) == (3, 3)
    np.testing.assert_array_equal(stored_ids(buffer), [0, 1, 2])
    buffer = add(buffer, **trial(3, 3))  # 6 rows into 5 slots: id 0 is overwritten
    assert (int(buffer.size), int(buffer.position)) == (5, 1)
    np.testing.assert_array_equal(stored_ids(buffer), [5, 1, 2, 3, 4])
    # Every field of a row belongs to the same transition.
    ids = np.asarray(buffer.obs[:, 0])
    np.testing.assert_array_equal(buffer.action[:, 0], ids * 10.0)
    np.testing.assert_array_equal(buffer.next_obs[:, 0], ids + 0.5)
    np.testing.assert_array_equal(buffer.reward, ids * 2.0)
    np.testing.assert_array_equal(buffer.done, ids % 2)


def test_trial_longer_than_capacity_keeps_its_last_rows():
    buffer = add(replay.replay_init(4, OBS, ACT), **trial(0, 2))
    buffer = add(buffer, **trial(2, 7))  # ids 2..8; only the last 4 (5..8) survive
    assert (int(buffer.size), int(buffer.position)) == (4, (2 + 7) % 4)
    assert sorted(stored_ids(buffer)) == [5, 6, 7, 8]
    assert int(buffer.obs[int(buffer.position) - 1, 0]) == 8  # newest just before position


def test_masked_rows_are_not_stored_and_rows_stay_contiguous():
    buffer = replay.replay_init(8, OBS, ACT)
    mask = np.array([True, True, False, True, False, False])
    buffer = add(buffer, **trial(0, 6), mask=mask)
    assert (int(buffer.size), int(buffer.position)) == (3, 3)
    np.testing.assert_array_equal(stored_ids(buffer), [0, 1, 3])
    np.testing.assert_array_equal(buffer.obs[3:], 0.0)  # nothing written past the valid rows
    buffer = add(buffer, **trial(10, 6), mask=np.zeros(6, bool))
    assert (int(buffer.size), int(buffer.position)) == (3, 3)


def test_sample_draws_only_valid_rows():
    buffer = add(replay.replay_init(16, OBS, ACT), **trial(1, 5))  # ids 1..5, rest zeros
    batch = jax.jit(replay.replay_sample, static_argnums=2)(jax.random.key(0), buffer, 256)
    ids = np.asarray(batch["obs"][:, 0])
    assert set(ids.tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}  # all valid rows, nothing else
    np.testing.assert_array_equal(batch["reward"], ids * 2.0)
    np.testing.assert_array_equal(batch["next_obs"][:, 0], ids + 0.5)
    assert batch["action"].shape == (256, ACT)


def test_vmaps_over_a_population_of_buffers():
    buffers = jax.vmap(lambda _: replay.replay_init(4, OBS, ACT))(jnp.arange(2))
    data = trial(0, 3)
    masks = np.array([[True, True, True], [False, True, False]])
    batched = {k: np.broadcast_to(v, (2, *v.shape)) for k, v in data.items()}
    buffers = jax.vmap(replay.replay_add)(buffers, **batched, mask=masks)
    np.testing.assert_array_equal(buffers.size, [3, 1])
    np.testing.assert_array_equal(buffers.obs[1, 0, 0], 1.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="capacity"):
        replay.replay_init(0, OBS, ACT)
    with pytest.raises(ValueError, match="batch_size"):
        replay.replay_sample(jax.random.key(0), replay.replay_init(2, OBS, ACT), 0)
