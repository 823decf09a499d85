"""Rollout videos of a tuning run's member, or of recorded actions (issue 12).

For the tuning runs of Zhang et al., "On the Importance of Hyperparameter Optimization for
Model-based Reinforcement Learning" (AISTATS 2021), whose members are PETS agents (Chua et
al., NeurIPS 2018). Two sources, both one jitted `lax.scan` over env steps in MJX that
records the physics state (qpos, qvel) after every step:

- `record_member`: a member's agent (model + hyperparameters) restored from the newest
  checkpoint of a run plans every step with CEM on its learned model, as in its trials
  (`PETS.plan`, then `cem.shift` to warm-start the next step).
- `record_actions`: a recorded action sequence [T, A] replayed open loop.

`check(VideoConfig)` validates everything (files, member, GL) before anything compiles;
`make_video` records, renders (`jaxmbrl.analysis.render`) and writes the videos.
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

from jaxmbrl import agents, envs, experiments
from jaxmbrl.analysis import render as render_lib
from jaxmbrl.options import check_options, option


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    """What `benchmarks/render.py` renders (its flags)."""

    run: str = option("", "A tuning run's directory (benchmarks.tune --out) to take a member of.")
    member: str = option("best", "With --run: best | worst (by fitness) | a member index.")
    actions: str = option("", "Instead of --run: an .npy of actions [T, A] to replay open loop.")
    env: str = option("", "With --actions: the environment (a run names its own).")
    seed: int = option(0, "Key of the reset state (and of the planner's sampling).")
    formats: tuple[str, ...] = option(render_lib.FORMATS, "Video formats: gif, mp4.")
    fps: float = option(0.0, "Frames per second (0: real time, 1 / env dt).", low=0.0)
    width: int = option(320, "Frame width in pixels (even).", low=16, high=4096)
    height: int = option(240, "Frame height in pixels (even).", low=16, high=4096)
    camera: str = option("", "A camera named in the model ('': the side view of render.VIEWS).")

    def validate(self) -> None:
        """Raises ValueError (one line) on a bad setting; reads no file."""
        check_options(self)
        if bool(self.run) == bool(self.actions):
            raise ValueError("give exactly one of --run, --actions")
        if self.actions and not self.env:
            raise ValueError("--actions needs --env")
        if self.run and self.env:
            raise ValueError("--env goes with --actions (a run names its env)")
        if self.env and self.env not in envs.ALL_ENVS:
            raise ValueError(f"unknown env {self.env!r}; valid: {', '.join(envs.ALL_ENVS)}")
        bad = sorted(set(self.formats) - set(render_lib.FORMATS))
        if bad or not self.formats:
            raise ValueError(
                f"formats={','.join(self.formats)}; valid: {', '.join(render_lib.FORMATS)}"
            )
        for name in ("width", "height"):
            if getattr(self, name) % 2:
                raise ValueError(f"{name}={getattr(self, name)} must be even (MP4)")


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


class Job(NamedTuple):
    """A checked `VideoConfig`: what to record, nothing compiled yet."""

    config: VideoConfig
    env: Any
    camera: Any
    run_config: experiments.TuneConfig | None
    member: int | str | None
    actions: np.ndarray | None


def _load_actions(path: str, env) -> np.ndarray:
    try:
        actions = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"--actions={path} is not a readable .npy ({error})") from None
    if actions.ndim != 2 or actions.shape[1] != env.action_size or len(actions) < 1:
        raise ValueError(
            f"--actions={path} has shape {actions.shape}; {env.name} needs [T, "
            f"{env.action_size}] with 1 <= T <= {env.episode_length}"
        )
    if len(actions) > env.episode_length:
        raise ValueError(
            f"--actions={path} has T={len(actions)}; {env.name}'s episode_length is "
            f"{env.episode_length}"
        )
    if not np.all(np.isfinite(actions)):
        raise ValueError(f"--actions={path} holds non-finite values")
    return actions


def check(config: VideoConfig) -> Job:
    """Everything checkable before compiling: settings, run/actions files, member, GL.

    Raises:
      ValueError: a bad setting or file (one line).
      render.GLUnavailable: no OpenGL context can be made (one line).
    """
    config.validate()
    run_config = member = actions = None
    if config.run:
        run_config = read_run_config(config.run)
        member = parse_member(config.member, run_config.population)
        checkpoint_dir(config.run)
        env = envs.load(run_config.env)
    else:
        env = envs.load(config.env)
        actions = _load_actions(config.actions, env)
    camera = render_lib.default_camera(env.mj_model, env.name)
    if config.camera:
        names = [env.mj_model.camera(i).name for i in range(env.mj_model.ncam)]
        if config.camera not in names:
            raise ValueError(f"--camera={config.camera!r}; valid: '' (side view), {names}")
        camera = config.camera
    render_lib.check_gl(env.mj_model, config.width, config.height)
    return Job(config, env, camera, run_config, member, actions)


def make_video(job: Job, out_dir: str) -> dict[str, Any]:
    """Records the trial, renders it and writes OUT/<stem>.{gif,mp4}; returns the record.

    <stem> is member_K (then also OUT/member_K_actions.npy: `--actions` of it with the
    same --seed replays the trial) or actions.
    """
    config, env = job.config, job.env
    key = jax.random.PRNGKey(config.seed)
    if job.run_config is not None:
        exp = experiments.build(job.run_config)
        chosen = restore_member(exp, config.run, job.member)
        recording = record_member(exp.agent, key, chosen.agent_state, chosen.hparams)
        stem = f"member_{chosen.index}"
        hparams = agents.hparams_dict(chosen.hparams)
        source = dict(
            run=os.path.abspath(config.run),
            member=chosen.index,
            member_flag=config.member,
            checkpoint_step=chosen.step,
            fitness=chosen.fitness,
            agent_trials=int(chosen.agent_state.trials),  # trials its model learned from
            hparams={k: np.asarray(v).item() for k, v in hparams.items()},
        )
    else:
        recording = record_actions(env, key, job.actions)
        stem, source = "actions", dict(actions=os.path.abspath(config.actions))
    fps = config.fps or 1.0 / env.dt
    frames = render_lib.render_frames(
        env.mj_model, recording.qpos, recording.qvel, config.width, config.height, job.camera
    )
    frames = render_lib.annotate(frames, recording.diverged_step)
    files = [
        render_lib.write_video(os.path.join(out_dir, f"{stem}.{fmt}"), frames, fps)
        for fmt in config.formats
    ]
    if job.run_config is not None:
        files.append(os.path.join(out_dir, f"{stem}_actions.npy"))
        np.save(files[-1], recording.actions)
    return dict(
        env=env.name,
        seed=config.seed,
        frames=len(frames),
        steps=len(recording.rewards),
        frame_convention="frame 0: reset state; frame k: state after step k",
        diverged_step=recording.diverged_step,
        **{"return": recording.total_return},
        fps=fps,
        width=config.width,
        height=config.height,
        mujoco_gl=os.environ.get("MUJOCO_GL", ""),
        files=[os.path.basename(f) for f in files],
        **source,
    )
