"""The study report's videos and its published copy (issue 19, parts 5 and 6), on
constructed data: which members are rendered, how the GIFs are embedded in report.md, and
what `publish` copies. No JAX program is compiled and nothing is rendered with MuJoCo (the
rendering itself is tests/test_render.py's)."""

import os
import re

import numpy as np
import pytest

from jaxmbrl.analysis import render as render_lib
from jaxmbrl.analysis import study_publish, study_videos


def _best(seed, final, worst_fitness, tuner_dir):
    return dict(
        seed=seed,
        dir=f"/out/cartpole/{tuner_dir}/seed{seed}",
        member=1,
        fitness=final,
        final_return=final,
        worst_member=0,
        worst_fitness=worst_fitness,
    )


def _study():
    best = {
        "random_search": [_best(0, 80.0, 5.0, "random_search"), _best(1, 150.0, 3.0, "rs")],
        "pbt": [_best(0, 120.0, None, "pbt"), _best(1, 90.0, -4.0, "pbt")],  # None: diverged
        "default": [_best(0, 60.0, 1.0, "default"), _best(1, 70.0, 2.0, "default")],
    }
    return dict(envs={"cartpole": dict(best=best)})


def test_picks_the_best_run_the_worst_member_and_the_default_of_the_best_seed():
    got = {p["role"]: p for p in study_videos.picks(_study())}
    assert [p["role"] for p in study_videos.picks(_study())] == ["best", "worst", "default"]
    assert (got["best"]["tuner"], got["best"]["seed"], got["best"]["member"]) == (
        "random_search", 1, "best"
    )  # fmt: skip
    # The member that broke the simulator (fitness -inf, stored as None) is the worst.
    assert (got["worst"]["tuner"], got["worst"]["seed"], got["worst"]["member"]) == (
        "pbt", 0, "worst"
    )  # fmt: skip
    assert (got["default"]["tuner"], got["default"]["seed"]) == ("default", 1)
    assert got["default"]["dir"] == "/out/cartpole/default/seed1"


def test_picks_leave_out_roles_without_runs():
    study = dict(envs={"cartpole": dict(best={"default": [_best(0, 60.0, 1.0, "default")]})})
    assert [p["role"] for p in study_videos.picks(study)] == ["default"]
    assert study_videos.picks(dict(envs={"cartpole": dict(best={})})) == []


def _fake_make_video(job, out_dir):
    """What video.make_video returns, with a real 3-frame GIF whose last frame diverged."""
    frames = render_lib.annotate(np.full((3, 16, 16, 3), 200, np.uint8), 2)
    render_lib.write_video(os.path.join(out_dir, "member_4.gif"), frames, 20.0)
    diverged = 2 if job.config.member == "worst" else None
    return dict(member=4, fitness=-1.5, diverged_step=diverged, frames=3, files=["member_4.gif"],
                **{"return": 12.25})  # fmt: skip


def test_report_embeds_each_gif_by_a_path_that_resolves_and_marks_the_diverged_frame(
    tmp_path, monkeypatch
):
    from jaxmbrl.analysis import video

    monkeypatch.setattr(video, "check", lambda config: type("Job", (), dict(config=config)))
    monkeypatch.setattr(video, "make_video", _fake_make_video)
    out = tmp_path / "study"
    rows = study_videos.make_videos(_study(), str(out), log=lambda _: None)
    assert [r["role"] for r in rows] == ["best", "worst", "default"]
    lines = study_videos.video_section(rows)
    text = "\n".join(lines)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+\.gif)\)", text)
    assert links == [r["gif"] for r in rows] and len(set(links)) == 3
    for link in links:  # relative to the report's directory, and a GIF there
        assert not os.path.isabs(link)
        with open(out / link, "rb") as f:
            assert f.read(6) in (b"GIF87a", b"GIF89a")
    assert text.count("physics diverged at frame 2") == 1
    assert text.count("no divergence") == 2
    assert "return 12.2" in text or "return 12.3" in text


def test_a_video_that_cannot_be_made_is_reported_with_its_reason(tmp_path):
    # The runs in _study() do not exist: every video fails at its check, none is written.
    rows = study_videos.make_videos(_study(), str(tmp_path), log=lambda _: None)
    assert len(rows) == 3 and all("error" in r and "gif" not in r for r in rows)
    text = "\n".join(study_videos.video_section(rows))
    assert text.count("not made:") == 3 and "is not a directory" in text
    assert not (tmp_path / "videos").exists() or not any((tmp_path / "videos").rglob("*.gif"))


def _write(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_publish_copies_the_light_files_with_their_paths_and_no_checkpoints(tmp_path):
    src, dst = tmp_path / "runs", tmp_path / "results"
    light = ["report.md", "study.json", "final_returns.png", "videos/cartpole_best/member_1.gif",
             "cartpole/pbt/seed0/members.jsonl", "cartpole/pbt/seed0/config.json"]  # fmt: skip
    heavy = ["cartpole/pbt/seed0/checkpoints/3/state.json", "cartpole/pbt/seed0/schedule.npz",
             "videos/cartpole_best/member_1_actions.npy"]  # fmt: skip
    for rel in light + heavy:
        _write(src / rel, b"12345")
    _write(dst / "videos/cartpole_worst/member_9.gif")  # stale, from an earlier study
    _write(dst / "reacher/transfer/seed100/members.jsonl")  # an env the study dropped
    _write(dst / "NOTES.txt")  # not the study's: left alone
    got = study_publish.publish(str(src), str(dst))
    assert got == dict(files=len(light), bytes=5 * len(light))
    for rel in light:
        assert (dst / rel).read_bytes() == b"12345"
    for rel in heavy:
        assert not (dst / rel).exists()
    assert not (dst / "videos/cartpole_worst").exists()  # its only file was stale
    assert not (dst / "reacher").exists()  # nor an empty tree of folders left behind
    assert (dst / "NOTES.txt").exists()


def test_publish_refuses_a_directory_without_a_report_and_a_destination_inside_it(tmp_path):
    with pytest.raises(ValueError, match="no report.md"):
        study_publish.publish(str(tmp_path), str(tmp_path / "x"))
    _write(tmp_path / "report.md")
    with pytest.raises(ValueError, match="inside"):
        study_publish.publish(str(tmp_path), str(tmp_path / "results"))


def test_the_divergence_row_links_the_frames_of_the_videos_that_diverged():
    rows = [dict(finding="tuned", measured="a"), dict(finding="divergence", measured="tuned 1")]
    videos = [
        dict(env="cartpole", role="best", gif="videos/b/member_1.gif", diverged_step=None),
        dict(env="cartpole", role="worst", gif="videos/w/member_0.gif", diverged_step=57),
        dict(env="cartpole", role="default", error="no GL"),
    ]
    study_videos.link_diverged_frames(rows, videos)
    assert rows[0]["measured"] == "a"
    assert rows[1]["measured"] == (
        "tuned 1; diverged in the videos: [cartpole worst member, frame 57](videos/w/member_0.gif)"
    )
    study_videos.link_diverged_frames(rows[:1], videos[:1])
    assert rows[0]["measured"] == "a"
