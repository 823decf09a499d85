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
import os
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmbrl import agents, envs, experiments
from jaxmbrl.analysis import render as render_lib
from jaxmbrl.analysis.recording import (
    checkpoint_dir,
    parse_member,
    read_run_config,
    record_actions,
    record_member,
    restore_member,
)
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
