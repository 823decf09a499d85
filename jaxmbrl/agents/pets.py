"""PETS agent: probabilistic ensembles with trajectory sampling, as pure functions.

Chua, Calandra, McAllister, Levine, "Deep Reinforcement Learning in a Handful of Trials
using Probabilistic Dynamics Models", NeurIPS 2018.

One call of `trial_and_train(key, state, hparams)` advances an agent by one trial: reset the
env, `lax.scan` over the trial's steps (plan with CEM on the learned model, act in MJX,
record), add the trial to the replay buffer, then train the ensemble on all data so far.
The first trial acts uniformly at random. Everything a tuner may change lives in
`PETSHParams` (traced), so a population of agents is one `jax.vmap` of these functions.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from jaxmbrl import replay as replay_lib
from jaxmbrl.agents.hparams import hparam_bounds, hparams_dict, replace_hparams
from jaxmbrl.agents.types import PETS, AgentState, PETSConfig, PETSHParams
from jaxmbrl.models import ensemble as ensemble_lib
from jaxmbrl.planning import cem as cem_lib
from jaxmbrl.planning import trajectory_sampling

__all__ = ["PETS", "AgentState", "PETSConfig", "PETSHParams", "make_pets"]


def _ensemble_config(env, config: PETSConfig) -> ensemble_lib.EnsembleConfig:
    return ensemble_lib.EnsembleConfig(
        input_size=env.obs_feature_size + env.action_size,
        output_size=env.target_size,
        ensemble_size=config.ensemble_size,
        num_elites=config.num_elites,
        max_hidden_width=config.max_hidden_width,
        max_hidden_layers=config.max_hidden_layers,
        max_epochs=config.max_epochs,
        batch_size=config.train_batch_size,
        activation=config.activation,
        tunable_architecture=config.tunable_architecture,
        forward_dtype=config.model_forward_dtype,
    )


def make_pets(
    env, config: PETSConfig, on_progress: Callable[[jax.Array], None] | None = None
) -> PETS:
    """Builds the PETS agent for `env`.

    Args:
      env: a `jaxmbrl.envs` environment (reset/step, reward_fn, termination_fn and the
        model pre/post-processing functions).
      config: static sizes and maxima; `replay_capacity` must be > 0.
      on_progress: host function called from inside a compiled trial (`jax.debug.callback`)
        every `config.progress_every` env steps and at the trial's end, with the env steps
        since the last call. None, or `progress_every` 0: no callbacks in the program.

    Returns:
      A `PETS` NamedTuple of pure functions:
        init(key, hparams) -> AgentState
        plan(key, model_state, obs, plan_init [max_horizon, A], hparams) -> (plan, info):
          one CEM optimisation on the trajectory-sampling cost (one planning step)
        run_trial(key, state, hparams) -> (state, metrics)
        train_model(key, state, hparams) -> (state, metrics)
        trial_and_train(key, state, hparams) -> (state, metrics)
        member_work(hparams) -> candidate-steps of one planning step (sorts a population)
    """
    if config.replay_capacity < config.trial_length:
        raise ValueError(
            f"replay_capacity={config.replay_capacity} must be >= trial_length="
            f"{config.trial_length}"
        )
    if config.num_particles % config.num_elites:
        raise ValueError(
            f"num_particles={config.num_particles} must be a multiple of "
            f"num_elites={config.num_elites}"
        )
    ensemble = ensemble_lib.make_ensemble(_ensemble_config(env, config))
    cem = cem_lib.make_cem(
        cem_lib.CEMConfig(
            action_low=env.action_low,
            action_high=env.action_high,
            max_horizon=config.max_horizon,
            max_population=config.max_population,
            max_iterations=config.max_iterations,
            candidate_chunk=config.candidate_chunk,
        )
    )

    def model_fn(model_state, obs, action):
        inputs = jnp.concatenate([env.obs_preprocess(obs), action], axis=-1)
        return ensemble.predict(model_state, inputs, std=True)

    # Stepped: CEM runs (iteration, chunk, step) as one loop (see planning.cem.make_cem).
    trajectory_cost = trajectory_sampling.make_stepped_trajectory_cost(
        model_fn,
        env.obs_postprocess,
        env.reward_fn,
        env.termination_fn,
        num_particles=config.num_particles,
        num_models=config.num_elites,
        max_horizon=config.max_horizon,
        propagation=config.propagation,
    )
    # The study's defaults, clipped to this config's static maxima.
    default_hparams = PETSHParams(
        model=ensemble_lib.default_model_hparams(_ensemble_config(env, config)),
        planner=cem_lib.default_cem_hparams(),
    )
    bounds = hparam_bounds(config)
    default_hparams = replace_hparams(
        default_hparams,
        {
            name: jnp.clip(value, *bounds[name])
            for name, value in hparams_dict(default_hparams).items()
        },
    )
    low = jnp.asarray(env.action_low, jnp.float32)
    high = jnp.asarray(env.action_high, jnp.float32)

    def init(key: chex.PRNGKey, hparams: PETSHParams) -> AgentState:
        model_state = ensemble.init(key, hparams.model)
        buffer = replay_lib.replay_init(
            config.replay_capacity, env.observation_size, env.action_size
        )
        return AgentState(model=model_state, replay=buffer, trials=jnp.zeros((), jnp.int32))

    def plan(
        key: chex.PRNGKey,
        model_state: ensemble_lib.ModelState,
        obs: jax.Array,
        plan_init: jax.Array,
        hparams: PETSHParams,
    ) -> tuple[jax.Array, dict]:
        """One planning step: CEM from `plan_init` on the model's trajectory-sampling cost."""
        return cem.optimize(key, trajectory_cost(model_state, obs), plan_init, hparams.planner)

    def _rollout(key, state: AgentState, hparams: PETSHParams):
        # One scan for both policies (the choice is a cond per step): the program holds one
        # copy of the env's step, not two (a cond between two rollouts compiled MJX twice and,
        # under vmap, ran both rollouts).
        reset_key, steps_key = jax.random.split(key)
        env_state = env.reset(reset_key)
        del reset_key
        random_policy = state.trials == 0  # the very first trial of an agent acts at random

        def random_action(key, obs, mean):
            del obs
            return jax.random.uniform(key, low.shape, minval=low, maxval=high), mean

        def planned_action(key, obs, mean):
            mean, _ = plan(key, state.model, obs, mean, hparams)
            return mean[0], cem.shift(mean, hparams.planner)

        def report(t):
            # Steps since the last report: `every`, or the remainder at the trial's end.
            done, every = t + 1, config.progress_every
            emit = (done % every == 0) | (done == config.trial_length)
            steps = done - ((done - 1) // every) * every
            # Tied to the member's own state, so that under vmap the value is batched and
            # the callback runs once per member (an unbatched value: once per batch).
            steps = jnp.where(state.trials >= 0, steps, 0)
            jax.lax.cond(emit, lambda: jax.debug.callback(on_progress, steps), lambda: None)

        def body(carry, xs):
            key, t = xs
            env_state, plan = carry
            if on_progress is not None and config.progress_every > 0:
                report(t)
            action, plan = jax.lax.cond(
                random_policy, random_action, planned_action, key, env_state.obs, plan
            )
            next_state = env.step(env_state, action)
            alive = env_state.done < 0.5
            transition = dict(
                obs=env_state.obs,
                action=action,
                next_obs=next_state.obs,
                reward=next_state.reward,
                done=next_state.done,
                mask=alive & (next_state.metrics["diverged"] < 0.5),
                diverged=next_state.metrics["diverged"],
            )
            return (next_state, plan), transition

        keys = jax.random.split(steps_key, config.trial_length)
        steps = jnp.arange(config.trial_length)  # not batched: the report's cond stays a cond
        carry = (env_state, cem.initial_mean(hparams.planner))
        (_, _), traj = jax.lax.scan(body, carry, (keys, steps))
        return traj

    def run_trial(key: chex.PRNGKey, state: AgentState, hparams: PETSHParams):
        """Runs one trial; the very first trial of an agent acts at random."""
        traj = _rollout(key, state, hparams)
        buffer = replay_lib.replay_add(
            state.replay,
            traj["obs"],
            traj["action"],
            traj["next_obs"],
            traj["reward"],
            traj["done"],
            traj["mask"],
        )
        alive = traj["mask"] | (traj["diverged"] > 0.5)
        metrics = dict(
            trial_return=jnp.sum(jnp.where(alive, traj["reward"], 0.0)),
            trial_length=jnp.sum(alive.astype(jnp.int32)),
            diverged=jnp.max(traj["diverged"]),
        )
        return state._replace(replay=buffer, trials=state.trials + 1), metrics

    def train_model(key: chex.PRNGKey, state: AgentState, hparams: PETSHParams):
        buffer = state.replay
        inputs = jnp.concatenate([env.obs_preprocess(buffer.obs), buffer.action], axis=-1)
        targets = env.make_target(buffer.obs, buffer.next_obs)
        model_state, metrics = ensemble.train(
            key, state.model, inputs, targets, buffer.size, hparams.model
        )
        return state._replace(model=model_state), metrics

    def trial_and_train(key: chex.PRNGKey, state: AgentState, hparams: PETSHParams):
        trial_key, train_key = jax.random.split(key)
        state, trial_metrics = run_trial(trial_key, state, hparams)
        state, model_metrics = train_model(train_key, state, hparams)
        return state, {**trial_metrics, **{f"model/{k}": v for k, v in model_metrics.items()}}

    return PETS(
        config=config,
        env=env,
        ensemble=ensemble,
        cem=cem,
        default_hparams=default_hparams,
        init=init,
        plan=plan,
        run_trial=run_trial,
        train_model=train_model,
        trial_and_train=trial_and_train,
        member_work=lambda hparams: cem.padded_work(hparams.planner),
    )
