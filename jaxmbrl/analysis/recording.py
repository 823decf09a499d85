"""Recording a trial for a video: a restored member planning, or recorded actions replayed.

For the tuning runs of Zhang et al. (AISTATS 2021), whose members are PETS agents (Chua et
al., NeurIPS 2018). Both sources are one jitted `lax.scan` over env steps in MJX that
records the physics state (qpos, qvel) after every step; a member is restored from the
newest checkpoint of its run (shapes from `jax.eval_shape`, so restoring compiles nothing).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import agents, experiments


class Recording(NamedTuple):
    """One recorded trial (numpy on the host)."""

    qpos: np.ndarray  # [T + 1, nq]: reset state, then after each step
    qvel: np.ndarray  # [T + 1, nv]
    actions: np.ndarray  # [T, A] as given to env.step (before its clipping)
    rewards: np.ndarray  # [T]
    diverged: np.ndarray  # [T] metrics['diverged'] after each step (0 or 1)

    @property
    def diverged_step(self) -> int | None:
        """1-based step whose physics diverged (= its frame index), or None."""
        hits = np.flatnonzero(self.diverged > 0.5)
        return int(hits[0]) + 1 if hits.size else None

    @property
    def total_return(self) -> float:
        return float(np.sum(self.rewards))


def _recorder(env, policy):
    """fn(reset_key, xs, carry, params) -> Recording; policy(params, x, obs, carry).

    `params` (the agent's model and hyperparameters) are arguments, not constants closed
    over, so the program does not embed them and is reused across members.
    """

    def record(reset_key, xs, carry, params):
        state = env.reset(reset_key)

        def body(loop, x):
            state, carry = loop
            action, carry = policy(params, x, state.obs, carry)
            state = env.step(state, action)
            data, diverged = state.data, state.metrics["diverged"]
            out = dict(qpos=data.qpos, qvel=data.qvel, actions=action, rewards=state.reward)
            return (state, carry), dict(out, diverged=diverged)

        _, traj = jax.lax.scan(body, (state, carry), xs)
        for name in ("qpos", "qvel"):  # frame 0: the reset state
            traj[name] = jnp.concatenate([getattr(state.data, name)[None], traj[name]])
        return traj

    jitted = jax.jit(record, compiler_options=env.compiler_options)

    def run(reset_key, xs, carry, params=()) -> Recording:
        return Recording(**jax.device_get(jitted(reset_key, xs, carry, params)))

    return run


def record_actions(env, key: chex.PRNGKey, actions: np.ndarray) -> Recording:
    """Replays `actions` [T, A] open loop from the reset state of `key`.

    The reset state is the one `record_member` starts from with the same key, so a member's
    recorded actions replay its trial.
    """
    actions = jnp.asarray(actions, jnp.float32)
    chex.assert_shape(actions, (None, env.action_size))
    reset_key, _ = jax.random.split(key)
    run = _recorder(env, lambda params, action, obs, carry: (action, carry))
    return run(reset_key, actions, jnp.zeros(()))


def record_member(
    agent: agents.PETS, key: chex.PRNGKey, agent_state: Any, hparams: Any
) -> Recording:
    """One trial of `agent.config.trial_length` steps in which the agent plans every step.

    The key is split as the agent's own trials split theirs (reset key, then one per step).
    """
    reset_key, steps_key = jax.random.split(key)
    keys = jax.random.split(steps_key, agent.config.trial_length)

    def policy(params, step_key, obs, mean):
        model, hparams = params
        mean, _ = agent.plan(step_key, model, obs, mean, hparams)
        return mean[0], agent.cem.shift(mean, hparams.planner)

    run = _recorder(agent.env, policy)
    initial = agent.cem.initial_mean(hparams.planner)
    return run(reset_key, keys, initial, (agent_state.model, hparams))


# ---- a member of a tuning run -------------------------------------------------------------


def read_run_config(run_dir: str) -> experiments.TuneConfig:
    """The validated settings of the run in `run_dir` (ValueError, one line, if none)."""
    if not os.path.isdir(run_dir):
        raise ValueError(f"--run={run_dir} is not a directory")
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            saved = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"--run={run_dir} holds no readable config.json ({error})") from None
    # Settings unknown to this version are ignored; missing ones take their defaults.
    known = {f.name for f in dataclasses.fields(experiments.TuneConfig)}
    try:
        config = experiments.TuneConfig(**{k: v for k, v in saved.items() if k in known})
        config.validate()
    except (TypeError, AttributeError) as error:  # a hand-edited config.json
        raise ValueError(f"--run={run_dir}: config.json is malformed ({error})") from None
    return config


def checkpoint_dir(run_dir: str) -> str:
    """`run_dir`'s checkpoint directory; ValueError when it holds no checkpoint yet."""
    path = os.path.join(run_dir, "checkpoints")
    steps = os.listdir(path) if os.path.isdir(path) else []
    if not any(name.isdigit() for name in steps):
        raise ValueError(f"--run={run_dir} has no checkpoint yet (nothing under {path})")
    return path


def parse_member(spec: str, population: int) -> int | str:
    """'best', 'worst' or a member index in [0, population) (ValueError otherwise)."""
    if spec in ("best", "worst"):
        return spec
    index = int(spec) if spec.strip().lstrip("-").isdigit() else -1
    if not 0 <= index < population:
        raise ValueError(
            f"--member={spec!r}; valid: best, worst or an index in [0, {population - 1}]"
        )
    return index


class Member(NamedTuple):
    index: int
    agent_state: Any
    hparams: Any
    fitness: float  # -inf: failed (diverged or non-finite); nan: no trial yet
    step: int  # tuner step of the checkpoint


def restore_member(exp: experiments.Experiment, run_dir: str, member: int | str) -> Member:
    """Member `member` ('best', 'worst' or an index) in the newest readable checkpoint.

    The checkpoint follows a tuner update, so slot i holds the agent it will train next
    (after PBT's exploit that may be a copy of a better member). 'best'/'worst' rank the
    slots by the run's fitness (mean of the last 3 returns; a failed member is -inf, the
    worst); slots without any trial yet (fresh restarts) are not ranked.
    """
    like = jax.eval_shape(lambda: experiments.init_run(exp))  # shapes only, no compile
    checkpointer = experiments.Checkpointer(checkpoint_dir(run_dir), exp.config.keep_checkpoints)
    restored = checkpointer.restore_latest(like)
    if restored is None:
        raise ValueError(f"--run={run_dir}: no checkpoint could be read")
    run_state, _ = restored
    pop = run_state.population
    fitness = np.asarray(jax.jit(exp.population.fitness)(pop), np.float64)
    returns = np.asarray(pop.members.recent_returns)
    ran = np.asarray(pop.members.failed) | np.isfinite(returns).any(axis=1)
    fitness = np.where(ran, fitness, np.nan)
    if isinstance(member, str):
        if not ran.any():
            raise ValueError(f"--member={member}: no member of {run_dir} has a trial yet")
        member = int((np.nanargmax if member == "best" else np.nanargmin)(fitness))
    take = lambda tree: jax.tree.map(lambda x: x[member], tree)  # noqa: E731
    agent_state, hparams = take(pop.members.agents), take(pop.hparams)
    return Member(member, agent_state, hparams, float(fitness[member]), int(run_state.step))


# ---- the binary's two phases --------------------------------------------------------------
