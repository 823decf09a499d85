"""Headless MuJoCo rendering of recorded trials to GIF and MP4 (issue 12: rollout videos).

For the tuning runs of Zhang et al., "On the Importance of Hyperparameter Optimization for
Model-based Reinforcement Learning" (AISTATS 2021): watching a member's trial shows what
its fitness number means (a swing-up, a fall, a physics blow-up).

Host-side only: frames come from MuJoCo C (`mujoco.Renderer`) by writing each recorded
qpos/qvel into an `MjData` and calling `mj_forward`; the trial itself is recorded in JAX
(`jaxmbrl.analysis.video`). MuJoCo picks its OpenGL backend from MUJOCO_GL when `mujoco` is
first imported, so this module never imports mujoco at import time: call
`select_gl_backend()` before anything imports `mujoco` (jaxmbrl.envs does).

Frame convention: frame 0 is the reset state and frame k the state after env step k, so a
trial of T steps gives T + 1 frames. A diverged step's frame and all later ones (the env
freezes the last good state) get a red border and tint. A progress bar along the bottom
edge tells where in the trial a frame is.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import glob
import os
import sys
import warnings

import numpy as np

# Values of MUJOCO_GL that MuJoCo accepts on Linux; anything else makes `import mujoco` fail.
GL_BACKENDS = ("egl", "osmesa", "glfw", "glx")
FORMATS = ("gif", "mp4")
RED = np.array([255, 0, 0], np.uint8)
_BORDER = 6  # pixels of red border on a diverged frame
_TINT = 0.35  # weight of red mixed into a diverged frame
_BAR = 3  # progress bar height in pixels


class GLUnavailable(RuntimeError):
    """No OpenGL context could be made with the selected backend (message is one line)."""


def gpu_visible() -> bool:
    """True when an NVIDIA GPU device node is visible (EGL then renders on the GPU)."""
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def select_gl_backend(environ: dict | None = None) -> str:
    """Sets MUJOCO_GL when unset (egl with a visible GPU, else osmesa) and returns it.

    Must run before `mujoco` is first imported; afterwards it changes nothing (MuJoCo has
    already chosen) and returns what MuJoCo saw.

    Raises:
      ValueError: MUJOCO_GL is set to a value MuJoCo rejects (one line, with the choices).
    """
    environ = os.environ if environ is None else environ
    value = environ.get("MUJOCO_GL", "").strip().lower()
    if not value and "mujoco" not in sys.modules:
        value = "egl" if gpu_visible() else "osmesa"
        environ["MUJOCO_GL"] = value
    if value and value not in GL_BACKENDS:
        raise ValueError(f"MUJOCO_GL={value!r} is not a backend; valid: {', '.join(GL_BACKENDS)}")
    return value


@contextlib.contextmanager
def _quiet_gl_errors():
    # A failed context leaves half-built objects whose __del__ raises (EGLError) and glfw
    # warns on stderr; neither may reach the user, who gets one line from GLUnavailable.
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
            gc.collect()
    finally:
        gc.collect()
        sys.unraisablehook = hook


def _make_renderer(mj_model, width: int, height: int):
    import mujoco  # lazily: MUJOCO_GL must be set first (see the module docstring)

    model = copy.copy(mj_model)  # a private copy: the offscreen buffer size is set below
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    if model.nlight == 0:  # lit only by the dim default headlight (cartpole): brighten it
        model.vis.headlight.ambient[:] = 0.35
        model.vis.headlight.diffuse[:] = 0.75
    return mujoco.Renderer(model, height=height, width=width), model


def _probe_gl(mj_model, width: int, height: int) -> str | None:
    try:
        import mujoco

        renderer, model = _make_renderer(mj_model, width, height)
        try:
            data = mujoco.MjData(model)
            mujoco.mj_forward(model, data)
            renderer.update_scene(data)
            renderer.render()
        finally:
            renderer.close()
    except Exception as error:  # noqa: BLE001 - any failure here means "no usable GL"
        detail = " ".join(str(error).split())[:200]
        return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return None  # the half-built objects die here, inside _quiet_gl_errors


def check_gl(mj_model, width: int = 320, height: int = 240) -> None:
    """Makes a renderer for `mj_model` and renders one frame, or raises GLUnavailable."""
    backend = os.environ.get("MUJOCO_GL", "") or "unset"
    with _quiet_gl_errors():
        problem = _probe_gl(mj_model, width, height)
    if problem is not None:
        hint = (
            "install libosmesa6 and use MUJOCO_GL=osmesa"
            if backend != "osmesa"
            else ("install Debian's libosmesa6 (apt-get install -y libosmesa6)")
        )
        raise GLUnavailable(
            f"no OpenGL for rendering with MUJOCO_GL={backend} ({problem}); {hint}, "
            "or MUJOCO_GL=egl on a GPU machine"
        )


# Side views (azimuth 90 looks along +y at the x-z plane); the locomotion envs are tracked.
# zoom scales MuJoCo's default free-camera distance (1.5 x the model's extent).
VIEWS = {
    "cartpole": dict(elevation=-5.0, zoom=0.62),
    "half_cheetah": dict(track=True),
    "hopper": dict(track=True),
    "reacher": dict(elevation=-60.0, zoom=0.75),  # planar arm: from above
    "pusher": dict(azimuth=135.0, elevation=-35.0, zoom=0.9),
}


def default_camera(mj_model, env_name: str = ""):
    """A free camera for env `env_name` (see VIEWS; others: MuJoCo's default, side-on)."""
    import mujoco

    view = VIEWS.get(env_name, {})
    camera = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(mj_model, camera)
    camera.azimuth = view.get("azimuth", 90.0)
    camera.elevation = view.get("elevation", -15.0)
    camera.distance *= view.get("zoom", 1.0)
    if view.get("track"):
        camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        camera.trackbodyid = 1  # the root body (the torso)
        camera.distance = 4.0
    return camera


def render_frames(
    mj_model,
    qpos: np.ndarray,
    qvel: np.ndarray,
    width: int = 320,
    height: int = 240,
    camera=None,
) -> np.ndarray:
    """Renders states [F, nq] / [F, nv] to uint8 frames [F, height, width, 3].

    A non-finite state (should the recording hold one) repeats the previous frame's state.
    """
    import mujoco

    qpos, qvel = np.asarray(qpos, np.float64), np.asarray(qvel, np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != mj_model.nq or qvel.shape != (len(qpos), mj_model.nv):
        raise ValueError(
            f"qpos {qpos.shape} / qvel {qvel.shape} do not fit nq={mj_model.nq}, nv={mj_model.nv}"
        )
    camera = default_camera(mj_model) if camera is None else camera
    renderer, model = _make_renderer(mj_model, width, height)
    frames = np.zeros((len(qpos), height, width, 3), np.uint8)
    try:
        data = mujoco.MjData(model)
        for k in range(len(qpos)):
            if np.all(np.isfinite(qpos[k])) and np.all(np.isfinite(qvel[k])):
                data.qpos[:], data.qvel[:] = qpos[k], qvel[k]
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=camera)
            frames[k] = renderer.render()
    finally:
        renderer.close()
    return frames


def annotate(frames: np.ndarray, diverged_frame: int | None) -> np.ndarray:
    """Progress bar on every frame; red border and tint from `diverged_frame` on.

    The bar of frame k spans (k + 1) / F of the width, so up to F <= width frames are all
    distinct (GIF writers merge identical consecutive frames).
    """
    frames = np.array(frames, np.uint8, copy=True)
    num, height, width, _ = frames.shape
    start = num if diverged_frame is None else max(0, int(diverged_frame))
    for k in range(num):
        bad = k >= start
        if bad:
            mixed = (1 - _TINT) * frames[k] + _TINT * RED
            frames[k] = mixed.round().astype(np.uint8)
            frames[k, :_BORDER], frames[k, -_BORDER:] = RED, RED
            frames[k, :, :_BORDER], frames[k, :, -_BORDER:] = RED, RED
        length = max(1, int(round(width * (k + 1) / num)))
        frames[k, height - _BAR :, :length] = 255  # white, on the red border too
    return frames


def write_video(path: str, frames: np.ndarray, fps: float) -> str:
    """Writes frames [F, H, W, 3] as GIF or MP4 (by the extension of `path`); returns it.

    GIF (Pillow) stores each frame with a duration of 1/fps, rounded to 10 ms as GIF
    requires; Pillow merges pixel-identical consecutive frames (summing their durations).
    MP4 (H.264 through imageio-ffmpeg's bundled ffmpeg) needs width and height even.
    """
    import imageio.v2 as imageio_v2
    import imageio.v3 as iio

    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"{path}: format {ext!r} unknown; valid: {', '.join(FORMATS)}")
    frames = np.asarray(frames, np.uint8)
    if ext == "gif":
        iio.imwrite(path, frames, extension=".gif", duration=1000.0 / fps, loop=0)
    else:
        with warnings.catch_warnings():
            # imageio-ffmpeg starts ffmpeg with subprocess (fork+exec, no Python in the child)
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            # quality 8 of 10; macro_block_size=2: no resizing unless a side is odd
            imageio_v2.mimwrite(path, list(frames), fps=fps, quality=8, macro_block_size=2)
    return path
