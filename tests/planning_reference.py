"""Reference planners for the tests of jaxmbrl.planning (PETS, Chua et al., NeurIPS 2018).

The trajectory-sampling cost as ONE function with its own horizon loop (a `fori_loop` over
the library's `make_trajectory_steps`): the plain cost CEM evaluates with nested loops
(iterations, then chunks, then steps). The library runs PETS' cost step by step in one flat
loop (`make_stepped_trajectory_cost`); the tests check that every variant (chunked or not,
flat or nested, vmapped or not) plans what this plain reference plans.
"""

from typing import Any

import jax
import jax.numpy as jnp

from jaxmbrl.planning import NONFINITE_COST, make_trajectory_steps


def make_trajectory_rollout(
    model_fn,
    obs_postprocess,
    reward_fn,
    termination_fn,
    *,
    num_particles: int,
    num_models: int,
    max_horizon: int,
    propagation: str = "ts_inf",
):
    """returns(key, model_state, obs [O], actions [P, H, A], horizon, first=0) -> [P, N]:
    each particle's summed reward (column j = particle j); non-finite values kept."""
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

    def returns(key, model_state: Any, obs, actions, horizon, first=0):
        horizon = jnp.clip(horizon, 1, max_horizon).astype(jnp.int32)
        step = lambda t, carry: steps.step(model_state, carry, t)
        carry = jax.lax.fori_loop(0, horizon, step, steps.start(key, obs, actions, first))
        return steps.returns(carry)

    return returns


def make_trajectory_cost(model_fn, obs_postprocess, reward_fn, termination_fn, **kw):
    """costs(key, model_state, obs, actions [P, max_horizon, A], horizon, first=0) -> [P]:
    -mean over particles of the summed reward, non-finite costs 1e6. Bind model_state and
    obs to get CEM's plain cost_fn(key, actions, horizon, first). kw: as the rollout's."""
    rollout = make_trajectory_rollout(model_fn, obs_postprocess, reward_fn, termination_fn, **kw)

    def costs(key, model_state, obs, actions, horizon, first=0):
        cost = -jnp.mean(rollout(key, model_state, obs, actions, horizon, first), axis=1)
        return jnp.where(jnp.isfinite(cost), cost, NONFINITE_COST)

    return costs
