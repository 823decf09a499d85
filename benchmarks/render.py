r"""Renders a trial of a tuning run's member, or a recorded action sequence, to GIF and MP4.

  python -m benchmarks.render --run=runs/pbt --member=best --out=runs/pbt/video
  python -m benchmarks.render --actions=actions.npy --env=cartpole --out=/tmp/video

--run: restores the newest checkpoint of the run in DIR (its config.json gives the
settings), takes member --member (best | worst by the run's fitness, or an index), and runs
one trial of the run's trial length in which the member's agent plans every step.
--actions: replays an .npy of actions [T, A] open loop in --env from reset(--seed).

Writes DIR/member_K.gif and .mp4 (or DIR/actions.*), DIR/member_K_actions.npy (the
trial's actions: `--actions=` it with the same --seed to replay the trial open loop) and
DIR/render.json: frames (T + 1:
frame 0 is the reset state, frame k the state after step k), diverged_step (the first step
whose physics diverged = its frame index, or null; that frame and later ones have a red
border and tint), return, and where it came from. MUJOCO_GL, when unset, becomes egl if an
NVIDIA GPU is visible, else osmesa (Debian: apt-get install -y libosmesa6).
"""

from __future__ import annotations

import os
import sys

import numpy as np
from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl.analysis import render as render_lib  # imports no mujoco (MUJOCO_GL first)

_RUN = flags.DEFINE_string("run", "", "Tuning run directory (benchmarks.tune --out).")
_MEMBER = flags.DEFINE_string("member", "best", "With --run: best | worst | member index.")
_ACTIONS = flags.DEFINE_string("actions", "", "An .npy of actions [T, A] to replay open loop.")
_ENV = flags.DEFINE_string("env", "", "With --actions: the environment.")
_SEED = flags.DEFINE_integer("seed", 0, "Key of the reset state (and of the planner's noise).")
_OUT = flags.DEFINE_string("out", "runs/render", "Output directory.")
_FORMATS = flags.DEFINE_list("formats", "gif,mp4", "Video formats: gif, mp4.")
_FPS = flags.DEFINE_float("fps", 0.0, "Frames per second (0: real time, 1 / env dt).")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width in pixels (even).")
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height in pixels (even).")
_CAMERA = flags.DEFINE_string("camera", "", "A camera named in the model ('' : side view).")


def _check_flags() -> None:
    """Everything checkable without building an env; exits 2 with one line."""
    _cli.check(bool(_RUN.value) != bool(_ACTIONS.value), "give exactly one of --run, --actions")
    _cli.check(not (_ACTIONS.value and not _ENV.value), "--actions needs --env")
    _cli.check(not (_RUN.value and _ENV.value), "--env goes with --actions (a run names its env)")
    bad = sorted(set(_FORMATS.value) - set(render_lib.FORMATS))
    _cli.check(
        bool(_FORMATS.value) and not bad,
        f"--formats={','.join(_FORMATS.value)}; valid: {', '.join(render_lib.FORMATS)}",
    )
    _cli.check(_FPS.value >= 0, f"--fps={_FPS.value} must be >= 0 (0: real time)")
    for flag in (_WIDTH, _HEIGHT):
        value = flag.value
        _cli.check(
            16 <= value <= 4096 and value % 2 == 0,
            f"--{flag.name}={value} must be even and in [16, 4096]",
        )


def _load_actions(path: str, env):
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
            f"--actions={path} has T={len(actions)} steps; {env.name}'s episode_length is "
            f"{env.episode_length}"
        )
    if not np.all(np.isfinite(actions)):
        raise ValueError(f"--actions={path} holds non-finite values")
    return actions


def _camera(env):
    if not _CAMERA.value:
        return render_lib.default_camera(env.mj_model, env.name)
    names = [env.mj_model.camera(i).name for i in range(env.mj_model.ncam)]
    if _CAMERA.value not in names:
        raise ValueError(f"--camera={_CAMERA.value!r}; valid: '' (side view), {names}")
    return _CAMERA.value


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    _check_flags()
    logging.set_verbosity(logging.WARNING)  # orbax and PyOpenGL log at INFO
    try:
        backend = render_lib.select_gl_backend()
    except ValueError as error:
        _cli.usage_error(str(error))
    # Imported only now: these import mujoco, which reads MUJOCO_GL once, at import.
    try:
        import jax

        from jaxmbrl import envs
        from jaxmbrl.analysis import video
    except Exception as error:  # noqa: BLE001 - a GL backend that breaks `import mujoco`
        _cli.usage_error(f"cannot import mujoco with MUJOCO_GL={backend}: {error}")

    try:
        if _RUN.value:
            config = video.read_run_config(_RUN.value)
            member = video.parse_member(_MEMBER.value, config.population)
            video.checkpoint_dir(_RUN.value)
            env = envs.load(config.env)
        else:
            env = envs.load(_ENV.value)
            actions = _load_actions(_ACTIONS.value, env)
        camera = _camera(env)
        os.makedirs(_OUT.value, exist_ok=True)
        render_lib.check_gl(env.mj_model, _WIDTH.value, _HEIGHT.value)
    except (ValueError, OSError, render_lib.GLUnavailable) as error:
        _cli.usage_error(str(error))

    _cli.enable_compilation_cache()
    key = jax.random.PRNGKey(_SEED.value)
    if _RUN.value:
        exp = video.experiments.build(config)
        env = exp.env
        chosen = video.restore_member(exp, _RUN.value, member)
        recording = video.record_member(exp.agent, key, chosen.agent_state, chosen.hparams)
        stem = f"member_{chosen.index}"
        source = dict(
            run=os.path.abspath(_RUN.value),
            member=chosen.index,
            member_flag=_MEMBER.value,
            checkpoint_step=chosen.step,
            fitness=chosen.fitness,
            agent_trials=int(chosen.agent_state.trials),  # trials its model has learned from
            hparams=video.hparams_record(chosen.hparams),
        )
    else:
        recording = video.record_actions(env, key, actions)
        stem = "actions"
        source = dict(actions=os.path.abspath(_ACTIONS.value))

    fps = _FPS.value or 1.0 / env.dt
    frames = render_lib.render_frames(
        env.mj_model, recording.qpos, recording.qvel, _WIDTH.value, _HEIGHT.value, camera
    )
    frames = render_lib.annotate(frames, recording.diverged_step)
    files = [
        render_lib.write_video(os.path.join(_OUT.value, f"{stem}.{fmt}"), frames, fps)
        for fmt in _FORMATS.value
    ]
    if _RUN.value:  # --actions=this --env=... --seed=same replays the trial open loop
        files.append(os.path.join(_OUT.value, f"{stem}_actions.npy"))
        np.save(files[-1], recording.actions)
    result = dict(
        env=env.name,
        seed=_SEED.value,
        frames=len(frames),
        steps=len(recording.rewards),
        frame_convention="frame 0: reset state; frame k: state after step k",
        diverged_step=recording.diverged_step,
        **{"return": recording.total_return},
        fps=fps,
        width=_WIDTH.value,
        height=_HEIGHT.value,
        mujoco_gl=backend,
        files=[os.path.basename(f) for f in files],
        **source,
    )
    _cli.write_json(os.path.join(_OUT.value, "render.json"), result)
    diverged = recording.diverged_step
    print(
        f"{stem} of {env.name}: {len(frames)} frames, return {recording.total_return:.2f}, "
        f"{'no divergence' if diverged is None else f'diverged at step {diverged}'}; "
        f"wrote {', '.join(files)}",
        file=sys.stdout,
    )


if __name__ == "__main__":
    _cli.prefer_wide_vectors()  # before JAX initialises its backend
    app.run(main, flags_parser=_cli.parse_flags)
