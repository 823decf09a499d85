"""End-to-end tuning runs on real MJX: every tuner, the binary, checkpoint/resume, errors."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxmbrl import analysis, tuners
from jaxmbrl import experiments as tuning
from jaxmbrl.experiments import checkpoint, rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny but real: cartpole, 2-3 members, 10-20 env steps per trial.
TINY = dict(
    env="cartpole",
    population=3,
    trials=3,
    ready_interval=1,
    trial_length=10,
    space="planning",
    preset="tiny",
)


def _members(out_dir):
    with open(os.path.join(out_dir, "members.jsonl")) as f:
        return [json.loads(line) for line in f]


def _summary(out_dir):
    with open(os.path.join(out_dir, "summary.json")) as f:
        summary = json.load(f)
    for timing in ("wall_seconds", "compile_seconds"):
        summary.pop(timing)
    return summary


@pytest.mark.parametrize("tuner", ["random_search", "hyperband", "pbt", "pbt_bt"])
def test_every_tuner_completes_a_run(tuner, tmp_path):
    config = tuning.TuneConfig(tuner=tuner, **TINY)
    lines = []
    summary = tuning.run(config, str(tmp_path), log=lines.append)
    rows = _members(str(tmp_path))
    assert summary["tuner"] == tuner and summary["best_return"] is not None
    assert np.isfinite(summary["best_return"])
    assert {r["member"] for r in rows} == {0, 1, 2}
    assert all(set(r["hparams"]) == set(summary["best_hparams"]) for r in rows)
    plots = analysis.plot_run(str(tmp_path / "members.jsonl"), str(tmp_path))
    assert plots == [str(tmp_path / "returns.png"), str(tmp_path / "schedules.png")]
    for png in ("returns.png", "schedules.png"):
        assert os.path.getsize(tmp_path / png) > 1000
    if tuner != "hyperband":  # every slot runs the whole budget
        assert len(rows) == config.population * config.trials
        assert max(r["trial"] for r in rows) == config.trials
    else:  # Li et al.'s member-trials: promoted configurations continue (or retrain)
        brackets = tuners.brackets(config.trials, config.eta)
        continued = sum(
            n * (r - p)
            for b in brackets
            for (n, r), p in zip(b, [0] + [r for _, r in b][:-1], strict=True)
        )
        retrained = sum(n * r for b in brackets for n, r in b)
        assert continued <= len(rows) <= retrained
    assert any(line.startswith("step") for line in lines)


def test_same_seed_is_bit_identical_and_resume_refuses_other_settings(tmp_path):
    config = tuning.TuneConfig(tuner="pbt", **TINY)
    first, second = tmp_path / "a", tmp_path / "b"
    tuning.run(config, str(first), log=lambda _: None)
    tuning.run(config, str(second), log=lambda _: None)
    assert _members(str(first)) == _members(str(second))
    assert _summary(str(first)) == _summary(str(second))
    other = tuning.TuneConfig(tuner="pbt", **{**TINY, "population": 2})
    with pytest.raises(ValueError, match="population=3"):
        tuning.run(other, str(first), log=lambda _: None)
    assert _members(str(first)) == _members(str(second))  # nothing overwritten


def test_corrupted_newest_checkpoint_falls_back_to_previous(tmp_path):
    config = tuning.TuneConfig(tuner="pbt", **TINY)
    tuning.run(config, str(tmp_path), log=lambda _: None)
    ckpt_dir = tmp_path / "checkpoints"
    steps = sorted(int(p) for p in os.listdir(ckpt_dir) if p.isdigit())
    assert steps == [2, 3]
    for root, _, files in os.walk(ckpt_dir / "3" / "state"):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(3)
    warnings = []
    exp = tuning.build(config)
    restored = checkpoint.Checkpointer(str(ckpt_dir), 2, log=warnings.append).restore_latest(
        tuning.init_run(exp)
    )
    assert restored is not None
    state, meta = restored
    assert int(state.step) == 2 and meta["members_lines"] == 2 * config.population
    assert len(warnings) == 1 and "step 3" in warnings[0]


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("env", "walker", "unknown env 'walker'"),
        ("tuner", "smac", "unknown tuner 'smac'"),
        ("space", "arch", "unknown space 'arch'"),
        ("preset", "huge", "unknown preset 'huge'"),
        ("population", 0, "population=0 must be >= 1"),
        ("trials", 0, "trials=0 must be >= 1"),
        ("ready_interval", 5, "ready_interval=5 must be <= trials=3"),
        ("eta", 1, "eta=1 must be >= 2"),
        ("trial_length", -1, "trial_length=-1"),
        ("member_batch", -1, "member_batch=-1 must be >= 0"),
    ],
)
def test_invalid_settings_name_the_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        tuning.TuneConfig(**{**TINY, field: value}).validate()


def _tune_cmd(out_dir, *extra):
    return [
        sys.executable,
        "-m",
        "benchmarks.tune",
        "--env=cartpole",
        "--tuner=pbt",
        "--population=2",
        "--trials=5",
        "--ready_interval=1",
        "--trial_length=20",
        "--preset=tiny",
        f"--out={out_dir}",
        *extra,
    ]


@pytest.mark.slow
def test_binary_killed_and_resumed_matches_uninterrupted_run(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_tune_cmd(whole), cwd=REPO, check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(
        _tune_cmd(killed), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600
    while not (killed / "checkpoints" / "2").exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "run finished before it could be killed"
    result = subprocess.run(
        _tune_cmd(killed), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resumed from tuner step" in result.stderr
    assert _members(str(killed)) == _members(str(whole))
    assert _summary(str(killed)) == _summary(str(whole))
    shutil.rmtree(killed / "checkpoints")


@pytest.mark.parametrize(
    "flag,message",
    [
        ("--population=0", "population=0 must be >= 1"),
        ("--tuner=smac", "random_search|hyperband|pbt|pbt_bt|pb2|bohb|replay"),
        ("--env=moon", "--env=moon"),
        ("--member_batch=-2", "member_batch=-2 must be >= 0"),
    ],
)
@pytest.mark.slow
def test_binary_bad_flag_exits_2_with_one_line(flag, message, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        _tune_cmd(out, flag), cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_binary_refuses_a_file_as_out_before_compiling(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        _tune_cmd(blocker), cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--out={blocker} is a file" in lines[0], result.stderr
    assert blocker.read_text() == "not a directory"


@pytest.mark.slow
def test_binary_replays_a_recorded_schedule(tmp_path):
    """`--tuner=replay --schedule=DIR/schedule.npz` through the binary, on another seed."""
    recorded, replayed = tmp_path / "pbt", tmp_path / "replay"
    subprocess.run(_tune_cmd(recorded), cwd=REPO, check=True, capture_output=True, timeout=600)
    schedule = recorded / "schedule.npz"
    cmd = _tune_cmd(replayed, "--tuner=replay", f"--schedule={schedule}", "--seed=1")
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    original, replay = _members(str(recorded)), _members(str(replayed))
    keys = lambda rows: [(r["member"], r["trial"], r["hparams"], r["parent"]) for r in rows]  # noqa: E731
    assert keys(original) == keys(replay) and len(original) == 2 * 5
    assert [r["trial_return"] for r in original] != [r["trial_return"] for r in replay]
    missing = subprocess.run(
        _tune_cmd(tmp_path / "x", "--tuner=replay", f"--schedule={tmp_path}/none.npz"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2 and "none.npz" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_unwritable_out_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match=f"--out={blocker}/run is not a writable directory"):
        rundir.prepare_out_dir(str(blocker / "run"))
    assert blocker.read_text() == "not a directory"


def test_recorded_schedule_replays_on_another_seed(tmp_path):
    recorded, replayed = tmp_path / "pbt", tmp_path / "replay"
    tuning.run(tuning.TuneConfig(tuner="pbt", **TINY), str(recorded), log=lambda _: None)
    schedule = str(recorded / "schedule.npz")
    assert tuning.load_schedule(schedule).source.shape == (TINY["trials"] + 1, 3)
    config = tuning.TuneConfig(tuner="replay", schedule=schedule, seed=1, **TINY)
    tuning.run(config, str(replayed), log=lambda _: None)
    original, replay = _members(str(recorded)), _members(str(replayed))
    assert [(r["member"], r["trial"], r["hparams"], r["parent"]) for r in original] == [
        (r["member"], r["trial"], r["hparams"], r["parent"]) for r in replay
    ]
    assert [r["trial_return"] for r in original] != [r["trial_return"] for r in replay]
    with pytest.raises(ValueError, match="population=2 differs from the schedule's 3"):
        tuning.TuneConfig(tuner="replay", schedule=schedule, **{**TINY, "population": 2}).validate()
    with pytest.raises(ValueError, match="needed by, and only by, --tuner=replay"):
        tuning.TuneConfig(tuner="pbt", schedule=schedule, **TINY).validate()
