"""Rollout videos (issue 12): benchmarks/render.py and jaxmbrl.analysis.{render,video}.

Rendering runs in subprocesses: MuJoCo reads MUJOCO_GL once, when first imported, and other
test modules import it without one. Tests that render need a working GL backend (here:
Debian's libosmesa6 with MUJOCO_GL=osmesa, chosen automatically) and are skipped with the
reason when none works.
"""

import json
import os
import subprocess
import sys

import cli
import numpy as np
import pytest
import tiny
from compiles import count_compiles

from jaxmbrl.analysis import render as render_lib
from jaxmbrl.experiments import TuneConfig
from jaxmbrl.experiments import run as run_tuning

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIAL_LENGTH = 20


def _env(**overrides):
    env = dict(os.environ)
    env.pop("MUJOCO_GL", None)  # let the binary choose
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _render(*flags, timeout=600, **env):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.render", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(**env),
    )


def _gl_problem() -> str | None:
    code = (
        "from jaxmbrl.analysis import render; render.select_gl_backend()\n"
        "from jaxmbrl import envs; render.check_gl(envs.load('cartpole').mj_model)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
        env=_env(),
    )  # fmt: skip
    return None if result.returncode == 0 else result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def needs_gl():
    problem = _gl_problem()
    if problem:
        pytest.skip(f"no OpenGL backend (apt-get install -y libosmesa6): {problem}")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A PBT run of the suite's shared sizes, in-process (its programs come from this
    process or the session's cache; the run renders nothing, so MUJOCO_GL does not matter)."""
    out = tmp_path_factory.mktemp("run")
    config = TuneConfig(**dict(tiny.RUN, tuner="pbt", ready_interval=1, trial_length=TRIAL_LENGTH))
    run_tuning(config, str(out), log=lambda line: None)
    return out


def _read_videos(out, stem):
    import imageio.v2 as imageio_v2
    import imageio.v3 as iio

    gif = iio.imread(os.path.join(out, f"{stem}.gif"))[..., :3]
    mp4 = np.stack(imageio_v2.mimread(os.path.join(out, f"{stem}.mp4"), memtest=False))
    return gif, mp4


def _assert_not_blank(frames):
    scene = frames[:, :-10].astype(np.int32)  # above the progress bar
    for frame in scene:
        assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5, "a single-colour frame"
    moved = np.abs(np.diff(scene, axis=0)).max(axis=(1, 2, 3))
    assert (moved > 0).mean() > 0.8, f"consecutive frames identical: {moved}"


def _assert_red_border(frame, red: bool):
    border = np.concatenate([frame[:4].reshape(-1, 3), frame[:, :4].reshape(-1, 3)])
    is_red = (border[:, 0] > 200) & (border[:, 1] < 60) & (border[:, 2] < 60)
    assert is_red.mean() > 0.9 if red else is_red.mean() < 0.1


# ---- host-side pieces, no GL --------------------------------------------------------------


def test_select_gl_backend(monkeypatch):
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)  # "not imported yet"
    for gpu, expected in ((True, "egl"), (False, "osmesa")):
        monkeypatch.setattr(render_lib, "gpu_visible", lambda gpu=gpu: gpu)
        environ = {}
        assert render_lib.select_gl_backend(environ) == expected
        assert environ["MUJOCO_GL"] == expected
    assert render_lib.select_gl_backend({"MUJOCO_GL": "glfw"}) == "glfw"
    with pytest.raises(ValueError, match="MUJOCO_GL='bogus'.*valid: egl, osmesa"):
        render_lib.select_gl_backend({"MUJOCO_GL": "bogus"})


def test_check_gl_failure_is_one_line(monkeypatch):
    def broken(*args):
        raise RuntimeError("no context\nsecond line")

    monkeypatch.setattr(render_lib, "_make_renderer", broken)
    with pytest.raises(render_lib.GLUnavailable) as info:
        render_lib.check_gl(object())
    message = str(info.value)
    assert "\n" not in message and "RuntimeError: no context second line" in message


def test_annotate_marks_divergence_and_keeps_frozen_frames_distinct(tmp_path):
    frames = np.full((12, 48, 64, 3), 40, np.uint8)  # a frozen scene: all frames identical
    marked = render_lib.annotate(frames, diverged_frame=7)
    for k in range(12):
        _assert_red_border(marked[k], red=k >= 7)
    assert (marked[3, :-4] == 40).all()  # untouched above the progress bar before divergence
    assert len({m.tobytes() for m in marked}) == 12
    assert (render_lib.annotate(frames, None)[:, :-4] == 40).all()
    # GIF writers merge identical consecutive frames; the progress bar keeps all 12.
    gif = render_lib.write_video(str(tmp_path / "a.gif"), marked, fps=10)
    mp4 = render_lib.write_video(str(tmp_path / "a.mp4"), marked, fps=10)
    assert os.path.getsize(gif) > 0 and os.path.getsize(mp4) > 0
    gif_frames, mp4_frames = _read_videos(tmp_path, "a")
    assert len(gif_frames) == 12 and len(mp4_frames) == 12
    _assert_red_border(gif_frames[9], red=True)
    _assert_red_border(gif_frames[2], red=False)


def test_parse_member():
    from jaxmbrl.analysis import video

    assert video.parse_member("best", 4) == "best"
    assert video.parse_member("3", 4) == 3
    for bad in ("4", "-1", "top"):
        with pytest.raises(ValueError, match=r"valid: best, worst or an index in \[0, 3\]"):
            video.parse_member(bad, 4)


# ---- the binary's refusals: one line, exit 2, nothing compiled ------------------------------


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A run directory with settings but no checkpoint (enough for flag checks)."""
    out = tmp_path_factory.mktemp("fake_run")
    (out / "config.json").write_text(json.dumps(dict(env="cartpole", population=2, trials=2)))
    np.save(out / "actions_3d.npy", np.zeros((5, 2), np.float32))
    return out


@pytest.mark.parametrize(
    "flags, message",
    [
        ([], "give exactly one of --run, --actions"),
        (["--run=/nonexistent/run"], "--run=/nonexistent/run is not a directory"),
        (["--run={run}", "--member=2"], "--member='2'; valid: best, worst or an index in [0, 1]"),
        (["--run={run}", "--member=best"], "has no checkpoint yet"),
        (["--actions=/nonexistent.npy", "--env=cartpole"], "is not a readable .npy"),
        (["--actions={run}/actions_3d.npy", "--env=cartpole"], "cartpole needs [T, 1]"),
        (["--actions={run}/actions_3d.npy"], "--actions needs --env"),
        (["--actions={run}/actions_3d.npy", "--env=walker"], "unknown env 'walker'"),
        (["--run={run}", "--formats=avi"], "formats=avi; valid: gif, mp4"),
        (["--run={run}", "--width=15"], "width=15 must be in [16, 4096]"),
        (["--run={run}", "--height=241"], "height=241 must be even"),
    ],
)
def test_bad_input_is_one_line_exit_2(fake_run, flags, message, tmp_path):
    """In-process through the binary's parser and `main`, nothing compiled (the exit status
    of the process itself: `test_no_gl_backend_is_one_line_exit_2`, which needs a process)."""
    with count_compiles() as compiled:
        result = cli.run(
            "benchmarks.render", *[f.format(run=fake_run) for f in flags], f"--out={tmp_path}/o"
        )
    assert result.code == 2 and compiled.programs() == [], result.stderr
    assert len(result.lines) == 1 and message in result.lines[0], result.stderr
    assert not os.path.exists(tmp_path / "o")


@pytest.mark.parametrize(
    "gl_env, message",
    [
        # glfw needs a display: none here, as on any headless machine.
        (dict(MUJOCO_GL="glfw", DISPLAY=None, WAYLAND_DISPLAY=None), "MUJOCO_GL=glfw"),
        (dict(MUJOCO_GL="bogus"), "MUJOCO_GL='bogus' is not a backend"),
    ],
)
def test_no_gl_backend_is_one_line_exit_2(fake_run, tmp_path, gl_env, message):
    np.save(tmp_path / "a.npy", np.zeros((5, 1), np.float32))
    result = _render(
        f"--actions={tmp_path / 'a.npy'}", "--env=cartpole", f"--out={tmp_path}", **gl_env
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not os.path.exists(tmp_path / "render.json")


# ---- videos ------------------------------------------------------------------------------


@pytest.mark.slow
def test_member_video_and_replay_of_its_actions(needs_gl, tiny_run, tmp_path):
    out = tmp_path / "member"
    result = _render(f"--run={tiny_run}", "--member=best", f"--out={out}", "--seed=3")
    assert result.returncode == 0, result.stderr
    info = json.loads((out / "render.json").read_text())
    stem = f"member_{info['member']}"
    assert info["frames"] == TRIAL_LENGTH + 1 and info["steps"] == TRIAL_LENGTH
    assert info["diverged_step"] is None and np.isfinite(info["return"])
    assert info["checkpoint_step"] == tiny.RUN["trials"] and info["member"] in (0, 1)
    assert info["mujoco_gl"] == ("egl" if render_lib.gpu_visible() else "osmesa")  # chosen
    gif, mp4 = _read_videos(out, stem)
    assert gif.shape == (TRIAL_LENGTH + 1, 240, 320, 3)
    assert mp4.shape == (TRIAL_LENGTH + 1, 240, 320, 3)
    _assert_not_blank(gif)
    _assert_not_blank(mp4)
    for frame in gif:
        _assert_red_border(frame, red=False)

    # The action-sequence path: the member's actions, replayed open loop from the same
    # reset state, give the same trial.
    replay = tmp_path / "replay"
    actions = out / f"{stem}_actions.npy"
    assert np.load(actions).shape == (TRIAL_LENGTH, 1)
    result = _render(f"--actions={actions}", "--env=cartpole", f"--out={replay}", "--seed=3")
    assert result.returncode == 0, result.stderr
    again = json.loads((replay / "render.json").read_text())
    assert again["frames"] == TRIAL_LENGTH + 1 and again["diverged_step"] is None
    assert again["return"] == pytest.approx(info["return"], abs=1e-3)
    replay_gif, replay_mp4 = _read_videos(replay, "actions")
    assert len(replay_gif) == len(replay_mp4) == TRIAL_LENGTH + 1
    _assert_not_blank(replay_gif)
    # Same states, same pictures (up to float rounding of two compiled programs).
    assert np.abs(replay_gif.astype(int) - gif).mean() < 2.0


@pytest.mark.slow
def test_diverged_frame_is_marked(needs_gl, tmp_path):
    # A cartpole whose divergence limit is |qpos|, |qvel| <= 2 "diverges" once pushed hard.
    code = f"""
import json, sys
import numpy as np
from jaxmbrl.analysis import render
render.select_gl_backend()
import jax
from jaxmbrl import envs
from jaxmbrl.analysis import video
env = envs.load("cartpole", max_abs_state=2.0)
rec = video.record_actions(env, jax.random.PRNGKey(0), np.full((15, 1), 3.0, np.float32))
frames = render.render_frames(env.mj_model, rec.qpos, rec.qvel,
                              camera=render.default_camera(env.mj_model, "cartpole"))
render.write_video("{tmp_path}/d.gif", render.annotate(frames, rec.diverged_step), fps=20)
render.write_video("{tmp_path}/d.mp4", render.annotate(frames, rec.diverged_step), fps=20)
json.dump(dict(step=rec.diverged_step, qpos=rec.qpos.tolist()), open("{tmp_path}/d.json", "w"))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600,
        env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "d.json").read_text())
    step, qpos = info["step"], np.array(info["qpos"])
    assert step is not None and 1 <= step < 15
    # The env freezes the last good state: the diverged step's frame repeats the one before.
    np.testing.assert_array_equal(qpos[step:], np.broadcast_to(qpos[step - 1], qpos[step:].shape))
    gif, mp4 = _read_videos(tmp_path, "d")
    assert len(gif) == len(mp4) == 16
    for k, frame in enumerate(gif):
        _assert_red_border(frame, red=k >= step)
