"""GIFs of the study's members for its report (Zhang et al., "On the Importance of
Hyperparameter Optimization for Model-based Reinforcement Learning", AISTATS 2021).

Per env three videos: the best member (the fittest member of the tuned run with the best
final return), the worst member (the least fit member of the tuned run whose worst member
did worst; a member that broke the simulator counts as the worst) and the default (the
fittest of the default PETS run on the best run's seed, the best of N as in finding 1).
Each is restored from its run's last checkpoint and plans one new trial on its learned
model (`jaxmbrl.analysis.video`, as `benchmarks/render.py --run=DIR --member=...`); the
frame where the physics diverged and every later one are red-bordered and tinted.

`picks` chooses from `analysis.study.analyse`'s dict (pure, no files); `make_videos` renders
them (MuJoCo must not have been imported before `render.select_gl_backend()`);
`video_section` writes the report's markdown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

ROLES = ("best", "worst", "default")
WIDTH, HEIGHT = 240, 180  # ~150 KB a 200-step cart-pole GIF


def _fitness(value: Any) -> float:
    return -math.inf if value is None else float(value)  # None: a failed member (-inf)


def picks(study: dict[str, Any]) -> list[dict[str, Any]]:
    """Per env, which run and member to render for each of ROLES (a role without runs is
    left out): dict(env, role, tuner, seed, dir, member ('best' | 'worst'))."""
    out = []
    for env, res in study["envs"].items():
        tuned = [
            dict(b, tuner=t) for t, bs in res.get("best", {}).items() if t != "default" for b in bs
        ]
        defaults = res.get("best", {}).get("default", [])
        chosen = {}
        if tuned:
            best = max(tuned, key=lambda b: (_fitness(b["final_return"]), -b["seed"]))
            worst = min(
                tuned, key=lambda b: (_fitness(b.get("worst_fitness")), _fitness(b["fitness"]))
            )
            chosen["best"], chosen["worst"] = (best, "best"), (worst, "worst")
        if defaults:
            seed = chosen["best"][0]["seed"] if "best" in chosen else defaults[0]["seed"]
            same = [b for b in defaults if b["seed"] == seed] or defaults
            chosen["default"] = (dict(same[0], tuner="default"), "best")
        for role in ROLES:
            if role in chosen:
                b, member = chosen[role]
                out.append(
                    dict(env=env, role=role, tuner=b["tuner"], seed=b["seed"], dir=b["dir"],
                         member=member)
                )  # fmt: skip
    return out


def make_videos(
    study: dict[str, Any], out_dir: str, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Renders `picks(study)` to OUT/videos/ENV_ROLE/member_K.gif.

    A video that cannot be made (no OpenGL, no checkpoint) gets an `error` instead of a
    `gif`, so the report says why it is missing. Returns one dict per pick: the pick, plus
    gif (relative to `out_dir`), member index, return, fitness, diverged_step, frames.
    """
    from jaxmbrl.analysis import render as render_lib
    from jaxmbrl.analysis import video  # imports mujoco: after select_gl_backend

    rows = []
    for pick in picks(study):
        dest = os.path.join(out_dir, "videos", f"{pick['env']}_{pick['role']}")
        config = video.VideoConfig(
            run=pick["dir"], member=pick["member"], formats=("gif",), width=WIDTH, height=HEIGHT
        )
        try:
            job = video.check(config)
            os.makedirs(dest, exist_ok=True)
            result = video.make_video(job, dest)
        except (ValueError, OSError, render_lib.GLUnavailable) as error:
            log(f"video {pick['env']} {pick['role']}: not made ({error})")
            rows.append(dict(pick, error=" ".join(str(error).split())))
            continue
        gif = next(f for f in result["files"] if f.endswith(".gif"))
        rows.append(
            dict(
                pick,
                gif=os.path.relpath(os.path.join(dest, gif), out_dir),
                member=result["member"],
                fitness=result["fitness"],
                diverged_step=result["diverged_step"],
                frames=result["frames"],
                **{"return": result["return"]},
            )
        )
        log(f"video {pick['env']} {pick['role']}: {rows[-1]['gif']}")
    return rows


def link_diverged_frames(verdicts: list[dict[str, Any]], videos: list[dict[str, Any]]) -> None:
    """Appends to the divergence row's measurement a link to each video whose physics
    diverged, with the frame (in place; the row is unchanged when none did)."""
    broken = [v for v in videos if v.get("diverged_step") is not None and "gif" in v]
    for row in verdicts:
        if row["finding"] == "divergence" and broken:
            row["measured"] += "; diverged in the videos: " + ", ".join(
                f"[{v['env']} {v['role']} member, frame {v['diverged_step']}]({v['gif']})"
                for v in broken
            )


_CAPTION = {
    "best": "best member (fittest member of the tuned run with the best final return)",
    "worst": "worst member (least fit member of the tuned run whose worst member did worst)",
    "default": "default PETS (fittest of the default run's members, same seed as the best)",
}


def video_section(videos: list[dict[str, Any]] | None) -> list[str]:
    """The report's "Videos" section (markdown lines): one GIF per row, captioned."""
    out = ["## Videos", ""]
    if not videos:
        return out + ["No videos were made (`--videos` off, or no run had a checkpoint).", ""]
    out += [
        "Each member is restored from its run's last checkpoint and plans one new trial on its "
        "learned model (`benchmarks/render.py`). A red border and tint mark the frame where the "
        "physics diverged and every later frame; the white bar at the bottom is the time.",
        "",
    ]
    for v in videos:
        where = f"{v['tuner']}, seed {v['seed']}"
        if "error" in v:
            out += [f"- {v['env']}, {_CAPTION[v['role']]} ({where}): not made: {v['error']}", ""]
            continue
        step = v["diverged_step"]
        diverged = "no divergence" if step is None else f"**physics diverged at frame {step}**"
        fitness = "n/a" if v["fitness"] is None else f"{v['fitness']:.1f}"
        out += [
            f"**{v['env']}, {_CAPTION[v['role']]}**: {where}, member {v['member']} (fitness "
            f"{fitness}); this trial's return {v['return']:.1f}, {v['frames']} frames, {diverged}.",
            "",
            f"![{v['env']} {v['role']}]({v['gif']})",
            "",
        ]
    return out
