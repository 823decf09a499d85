r"""Renders a trial of a tuning run's member, or a recorded action sequence, to GIF and MP4.

  python -m benchmarks.render --run=runs/pbt --member=best --out=runs/pbt/video
  python -m benchmarks.render --actions=actions.npy --env=cartpole --out=/tmp/video

Flags -> `jaxmbrl.analysis.video.VideoConfig` -> `video.check` (everything, before anything
compiles) -> `video.make_video`. --run: restores the newest checkpoint of the run in DIR
(its config.json gives the settings), takes member --member (best | worst by the run's
fitness, or an index), and runs one trial of the run's trial length in which the member's
agent plans every step. --actions: replays an .npy of actions [T, A] open loop in --env.

Writes DIR/member_K.gif and .mp4 (or DIR/actions.*), DIR/member_K_actions.npy (the
trial's actions: `--actions=` it with the same --seed to replay the trial open loop) and
DIR/render.json: frames (T + 1: frame 0 is the reset state, frame k the state after step
k), diverged_step (the first step whose physics diverged = its frame index, or null; that
frame and later ones have a red border and tint), return, and where it came from.
MUJOCO_GL, when unset, becomes egl if an NVIDIA GPU is visible, else osmesa (Debian:
apt-get install -y libosmesa6).
"""

from __future__ import annotations

import os

from benchmarks import _gl  # imports no mujoco

if __name__ == "__main__":  # before the imports below import mujoco (benchmarks._gl)
    _gl.choose_backend()

from absl import app, flags, logging  # noqa: E402

from benchmarks import _cli  # noqa: E402
from jaxmbrl import runtime  # noqa: E402
from jaxmbrl.analysis import render as render_lib  # noqa: E402
from jaxmbrl.analysis import video  # noqa: E402


def define_flags() -> None:
    _cli.define_flags(video.VideoConfig)
    _cli.define_out("runs/render", "member_K.gif/.mp4/_actions.npy or actions.*, render.json")
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax and PyOpenGL log at INFO
    config = _cli.config_from_flags(video.VideoConfig)
    out = flags.FLAGS.out
    try:
        job = video.check(config)
    except (ValueError, render_lib.GLUnavailable) as error:
        _cli.usage_error(str(error))
    _cli.prepare_out(out)
    runtime.enable_compilation_cache()
    result = video.make_video(job, out)
    runtime.write_json(os.path.join(out, "render.json"), result)
    diverged = result["diverged_step"]
    print(
        f"{', '.join(result['files'])} of {result['env']}: {result['frames']} frames, return "
        f"{result['return']:.2f}, "
        f"{'no divergence' if diverged is None else f'diverged at step {diverged}'}; in {out}"
    )


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
