"""Trajectory-sampling costs of PETS (Chua et al., NeurIPS 2018): TS-inf, TS-1 and expectation.

Each of P candidate action sequences is evaluated with `num_particles` particles propagated
through a probabilistic ensemble of `num_models` members. Particles live in the layout
[num_models, P, particles_per_model, ...] for the whole rollout, so every step is ONE batched
forward pass per member on [num_models, P * particles_per_model, ...] rows without transposes.
Particle j of a candidate sits at (model j % num_models, slot j // num_models):
  * 'ts_inf': particle j keeps model j % num_models for the whole horizon (the original's
    default); next target = mean + std * eps;
  * 'ts_1': before every step each group of num_models particles (one slot of every model) is
    randomly permuted across the model axis, so every particle gets a uniformly random model and
    every model still sees exactly particles_per_model particles of each candidate;
  * 'expectation': no sampling, the predicted mean is propagated (model j % num_models).
Random numbers for (step, candidate) come from keys derived with `jax.random.fold_in` of the
global candidate index (`first` + row), so the costs of candidate i do not depend on how many
(padded) candidates are evaluated beside it, nor on the chunk CEM evaluates it in.

Per step the reward is reward_fn(obs, action, next_obs); once termination_fn fires for a
particle, its later rewards are dropped (the terminating step's reward counts, as in mbrl-lib's
ModelEnv). The rollout is given one step at a time (`make_trajectory_steps`) and CEM drives
it (`flat_loop`: steps >= horizon are not run). cost = -mean over particles of the summed
reward; a non-finite cost becomes 1e6 (the original's value). The same cost as one function
with its own horizon loop, CEM's plain cost path, is the tests' reference
(tests/planning_reference.py).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxmbrl.planning.elites import NONFINITE_COST
from jaxmbrl.planning.flat_loop import SteppedCost

PROPAGATIONS = ("ts_inf", "ts_1", "expectation")

# model_fn(model_state, obs [K, N, O], action [K, N, A]) -> (mean, std) [K, N, T]
ModelFn = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


class RolloutCarry(NamedTuple):
    """State of a rollout between steps (leading dims: M models, P*G particle rows)."""

    key: jax.Array
    first: jax.Array  # int32: global index of candidate 0
    actions: jax.Array  # [max_horizon, P, A]
    obs: jax.Array  # [M, P*G, O]
    total: jax.Array  # [M, P*G] summed reward
    alive: jax.Array  # [M, P*G] bool


class TrajectorySteps(NamedTuple):
    """A rollout one step at a time (what CEM's flat loop drives)."""

    # start(key, obs [O], actions [P, max_horizon, A], first) -> RolloutCarry
    start: Callable[[jax.Array, jax.Array, jax.Array, jax.Array], RolloutCarry]
    # step(model_state, carry, t, eps=None) -> carry after step t; eps [M, P*G, T]: step t's
    # noise for the carry's candidates, drawn here if None
    step: Callable[..., RolloutCarry]
    # returns(carry) -> [P, num_particles] summed rewards (column j = particle j)
    returns: Callable[[RolloutCarry], jax.Array]
    # noise(key, count, T) -> [max_horizon, M, count, G, T]: every step's eps for candidates
    # 0 .. count - 1 of a rollout started with `key` (the bits step draws); None: expectation
    noise: Callable[[jax.Array, int, int], jax.Array] | None


def make_trajectory_steps(
    model_fn: ModelFn,
    obs_postprocess: Callable[[jax.Array, jax.Array], jax.Array],
    reward_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    termination_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None,
    *,
    num_particles: int,
    num_models: int,
    max_horizon: int,
    propagation: str = "ts_inf",
) -> TrajectorySteps:
    """Builds the rollout as start/step/returns. Args: as `make_stepped_trajectory_cost`."""
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation={propagation!r} must be one of {PROPAGATIONS}")
    for name, value in (
        ("num_particles", num_particles),
        ("num_models", num_models),
        ("max_horizon", max_horizon),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an int >= 1")
    if num_particles % num_models:
        raise ValueError(
            f"num_particles={num_particles} must be a multiple of num_models={num_models}"
        )
    num_m, per_model = num_models, num_particles // num_models

    def step_keys(key, t):
        # (noise key, permutation key) of step t: one derivation for `step` and `noise`.
        return jax.random.split(jax.random.fold_in(key, t))

    def candidate_keys(key, first, num_cands):
        return jax.vmap(jax.random.fold_in, (None, 0))(key, first + jnp.arange(num_cands))

    def candidate_noise(key, first, shape):
        # [M, P, G, *shape] from one key per candidate: prefix-stable in P.
        keys = candidate_keys(key, first, shape[0])
        draw = lambda k: jax.random.normal(k, (num_m, per_model) + shape[1:], jnp.float32)
        return jax.vmap(draw, out_axes=1)(keys)

    def candidate_permutation(key, first, num_cands):
        # [M, P, G]: for each (candidate, slot) a random permutation of the model axis.
        keys = candidate_keys(key, first, num_cands)
        draw = lambda k: jnp.argsort(jax.random.uniform(k, (per_model, num_m)), axis=-1)
        return jnp.transpose(jax.vmap(draw)(keys), (2, 0, 1))

    def start(key, obs, actions, first) -> RolloutCarry:
        chex.assert_rank(obs, 1)
        chex.assert_rank(actions, 3)
        num_cands, act_dim = actions.shape[0], actions.shape[2]
        chex.assert_shape(actions, (num_cands, max_horizon, act_dim))
        rows = num_cands * per_model
        return RolloutCarry(
            key=key,
            first=jnp.asarray(first, jnp.int32),
            actions=jnp.swapaxes(actions.astype(jnp.float32), 0, 1),  # [H, P, A]
            obs=jnp.broadcast_to(obs.astype(jnp.float32), (num_m, rows, obs.shape[0])),
            total=jnp.zeros((num_m, rows), jnp.float32),
            alive=jnp.ones((num_m, rows), bool),
        )

    def noise(key, count, target_dim):
        def at(t):
            noise_key, _ = step_keys(key, t)
            return candidate_noise(noise_key, jnp.asarray(0, jnp.int32), (count, target_dim))

        return jax.vmap(at)(jnp.arange(max_horizon))

    def step(model_state, carry: RolloutCarry, t, eps=None) -> RolloutCarry:
        cur_obs, total, alive = carry.obs, carry.total, carry.alive
        _, num_cands, act_dim = carry.actions.shape
        rows = num_cands * per_model
        noise_key, perm_key = step_keys(carry.key, t)
        if propagation == "ts_1":
            perm = candidate_permutation(perm_key, carry.first, num_cands)
            regroup = lambda x: x.reshape((num_m, num_cands, per_model) + x.shape[2:])
            move = lambda x, p: jnp.take_along_axis(regroup(x), p, axis=0).reshape(x.shape)
            cur_obs = move(cur_obs, perm[..., None])
            total, alive = move(total, perm), move(alive, perm)
        act = jax.lax.dynamic_index_in_dim(carry.actions, t, keepdims=False)  # [P, A]
        act = jnp.broadcast_to(act[None, :, None], (num_m, num_cands, per_model, act_dim))
        act = act.reshape(num_m, rows, act_dim)
        mean, std = model_fn(model_state, cur_obs, act)
        chex.assert_rank(mean, 3)
        chex.assert_equal_shape([mean, std])
        if propagation == "expectation":
            target = mean
        else:
            if eps is None:
                eps = candidate_noise(noise_key, carry.first, (num_cands, mean.shape[-1]))
            target = mean + std * eps.reshape(mean.shape)
        next_obs = obs_postprocess(cur_obs, target)
        reward = reward_fn(cur_obs, act, next_obs)
        chex.assert_shape(reward, (num_m, rows))
        # where, not multiply: a dead particle's NaN reward must not leak into its sum.
        total = total + jnp.where(alive, reward, 0.0)
        if termination_fn is not None:
            alive = alive & ~termination_fn(cur_obs, act, next_obs)
        return carry._replace(obs=next_obs, total=total, alive=alive)

    def returns(carry: RolloutCarry) -> jax.Array:
        num_cands = carry.actions.shape[1]
        # [M, P, G] -> [P, G, M] -> [P, N]: column g * M + m = particle j with j % M == m.
        total = jnp.transpose(carry.total.reshape(num_m, num_cands, per_model), (1, 2, 0))
        return total.reshape(num_cands, num_particles)

    noise_fn = None if propagation == "expectation" else noise
    return TrajectorySteps(start=start, step=step, returns=returns, noise=noise_fn)


def make_stepped_trajectory_cost(
    model_fn: ModelFn,
    obs_postprocess: Callable[[jax.Array, jax.Array], jax.Array],
    reward_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    termination_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None,
    *,
    num_particles: int,
    num_models: int,
    max_horizon: int,
    propagation: str = "ts_inf",
) -> Callable[[Any, jax.Array], SteppedCost]:
    """Builds bind(model_state, obs [O]) -> SteppedCost: the trajectory cost step by step.

    Args:
      model_fn: (model_state, obs [K, N, O], action [K, N, A]) -> (mean, std) [K, N, T], the
        ensemble's Gaussian prediction in target space, member k on rows [k].
      obs_postprocess: (obs, target) -> next_obs (e.g. obs + predicted delta).
      reward_fn: (obs, action, next_obs) -> reward, any leading dims.
      termination_fn: (obs, action, next_obs) -> bool, any leading dims; None: never terminates.
      num_particles: particles per candidate, a multiple of num_models.
      num_models: ensemble members used for propagation (K).
      max_horizon: static length of the action sequences.
      propagation: 'ts_inf', 'ts_1' or 'expectation'.

    Returns:
      bind(model_state, obs) -> SteppedCost whose costs are -mean over particles of the summed
      reward of the first `horizon` steps, [C] float32 (row i is candidate first + i);
      non-finite costs become 1e6. CEM runs it one model step per tick (`flat_loop`).
    """
    steps = make_trajectory_steps(
        model_fn,
        obs_postprocess,
        reward_fn,
        termination_fn,
        num_particles=num_particles,
        num_models=num_models,
        max_horizon=max_horizon,
        propagation=propagation,
    )

    def bind(model_state: Any, obs: jax.Array) -> SteppedCost:
        def costs(carry):
            cost = -jnp.mean(steps.returns(carry), axis=1)
            return jnp.where(jnp.isfinite(cost), cost, NONFINITE_COST)

        def noise(key, actions):
            # The model's target width, from shapes only (no forward pass is run).
            rows = jax.ShapeDtypeStruct((num_models, 1, obs.shape[0]), jnp.float32)
            acts = jax.ShapeDtypeStruct((num_models, 1, actions.shape[2]), jnp.float32)
            target_dim = jax.eval_shape(model_fn, model_state, rows, acts)[0].shape[-1]
            return steps.noise(key, actions.shape[0], target_dim)

        return SteppedCost(
            start=lambda key, actions, first: steps.start(key, obs, actions, first),
            step=lambda carry, t, eps=None: steps.step(model_state, carry, t, eps),
            costs=costs,
            noise=None if steps.noise is None else noise,
        )

    return bind
