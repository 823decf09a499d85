"""End-to-end tuning runs on real MJX: every tuner, the binary, checkpoint/resume, errors.

Every run has the suite's shared sizes (tests/tiny.py), so the population step compiles once
for the session and the binary's subprocesses load it from the persistent cache. One PBT run
(`pbt_run`, module-scoped) is the reference that several tests read: a second run with the
same seed, the binary killed and resumed, the corrupted checkpoint and the replays.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cli
import numpy as np
import pytest
import tiny
from compiles import count_compiles

from jaxmbrl import analysis, tuners
from jaxmbrl import experiments as tuning
from jaxmbrl.experiments import checkpoint, rundir

REPO = cli.REPO
# PBT's reference run: 4 one-trial steps (the binary is killed after the 2nd checkpoint).
PBT = dict(tiny.RUN, tuner="pbt", ready_interval=1)
TINY = dict(tiny.RUN, ready_interval=1)


def _members(out_dir):
    with open(os.path.join(out_dir, "members.jsonl")) as f:
        return [json.loads(line) for line in f]


def _summary(out_dir):
    with open(os.path.join(out_dir, "summary.json")) as f:
        summary = json.load(f)
    for timing in ("wall_seconds", "compile_seconds"):
        summary.pop(timing)
    return summary


@pytest.fixture(scope="module")
def pbt_run(tmp_path_factory):
    """The reference: PBT with the shared sizes, run in-process."""
    out = tmp_path_factory.mktemp("pbt") / "run"
    lines = []
    summary = tuning.run(tuning.TuneConfig(**PBT), str(out), log=lines.append)
    return out, summary, lines


def _check_run(out, summary, lines, config):
    rows = _members(str(out))
    assert summary["tuner"] == config.tuner and summary["best_return"] is not None
    assert np.isfinite(summary["best_return"])
    assert {r["member"] for r in rows} == set(range(config.population))
    assert all(set(r["hparams"]) == set(summary["best_hparams"]) for r in rows)
    plots = analysis.plot_run(str(out / "members.jsonl"), str(out))
    assert plots == [str(out / "returns.png"), str(out / "schedules.png")]
    for png in ("returns.png", "schedules.png"):
        assert os.path.getsize(out / png) > 1000
    if config.tuner != "hyperband":  # every slot runs the whole budget
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


@pytest.mark.parametrize("tuner", ["random_search", "hyperband", "pbt_bt"])
def test_every_tuner_completes_a_run(tuner, tmp_path):
    """Each tuner's run: records, summary, plots, budget (PBT: `test_pbt_run_completes`)."""
    config = tuning.TuneConfig(tuner=tuner, **TINY)
    lines = []
    summary = tuning.run(config, str(tmp_path), log=lines.append)
    _check_run(tmp_path, summary, lines, config)


def test_pbt_run_completes(pbt_run):
    out, summary, lines = pbt_run
    _check_run(out, summary, lines, tuning.TuneConfig(**PBT))


def test_same_seed_is_bit_identical_and_resume_refuses_other_settings(pbt_run, tmp_path):
    first, _, _ = pbt_run
    second = tmp_path / "b"
    tuning.run(tuning.TuneConfig(**PBT), str(second), log=lambda _: None)
    assert _members(str(first)) == _members(str(second))
    assert _summary(str(first)) == _summary(str(second))
    other = tuning.TuneConfig(**{**PBT, "population": 3})
    with pytest.raises(ValueError, match="population=2"):
        tuning.run(other, str(second), log=lambda _: None)
    assert _members(str(first)) == _members(str(second))  # nothing overwritten


def test_corrupted_newest_checkpoint_falls_back_to_previous(pbt_run, tmp_path):
    ckpt_dir = tmp_path / "checkpoints"
    shutil.copytree(pbt_run[0] / "checkpoints", ckpt_dir)
    steps = sorted(int(p) for p in os.listdir(ckpt_dir) if p.isdigit())
    assert steps == [3, 4]
    for root, _, files in os.walk(ckpt_dir / "4" / "state"):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(3)
    warnings = []
    config = tuning.TuneConfig(**PBT)
    exp = tuning.build(config)
    restored = checkpoint.Checkpointer(str(ckpt_dir), 2, log=warnings.append).restore_latest(
        tuning.init_run(exp)
    )
    assert restored is not None
    state, meta = restored
    assert int(state.step) == 3 and meta["members_lines"] == 3 * config.population
    assert len(warnings) == 1 and "step 4" in warnings[0]


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("env", "walker", "unknown env 'walker'"),
        ("tuner", "smac", "unknown tuner 'smac'"),
        ("space", "arch", "unknown space 'arch'"),
        ("preset", "huge", "unknown preset 'huge'"),
        ("population", 0, "population=0 must be >= 1"),
        ("trials", 0, "trials=0 must be >= 1"),
        ("ready_interval", 5, "ready_interval=5 must be <= trials=4"),
        ("eta", 1, "eta=1 must be >= 2"),
        ("trial_length", -1, "trial_length=-1"),
        ("member_batch", -1, "member_batch=-1 must be >= 0"),
    ],
)
def test_invalid_settings_name_the_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        tuning.TuneConfig(**{**TINY, field: value}).validate()


def _tune_flags(out_dir, **overrides):
    return [*tiny.flags(**{**PBT, **overrides}), f"--out={out_dir}"]


@pytest.mark.slow
def test_binary_killed_and_resumed_matches_uninterrupted_run(pbt_run, tmp_path):
    """The binary, SIGKILLed after its 2nd checkpoint (a real process) and run again (its
    parser and `main` in this process, whose programs pbt_run compiled), resumes and ends
    with the records and summary of the uninterrupted in-process run (so the binary's run is
    also the library's run, bit for bit)."""
    whole, killed = pbt_run[0], tmp_path / "killed"
    cmd = [sys.executable, "-m", "benchmarks.tune", *_tune_flags(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (killed / "checkpoints" / "2").exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "run finished before it could be killed"
    result = cli.run("benchmarks.tune", *_tune_flags(killed))
    assert result.code == 0, result.stderr[-2000:]
    assert "resumed from tuner step" in result.stderr
    assert _members(str(killed)) == _members(str(whole))
    assert _summary(str(killed)) == _summary(str(whole))


@pytest.mark.parametrize(
    "flag,message",
    [
        ("--population=0", "population=0 must be >= 1"),
        ("--tuner=smac", "random_search|hyperband|pbt|pbt_bt|pb2|bohb|replay"),
        ("--env=moon", "--env=moon"),
        ("--member_batch=-2", "member_batch=-2 must be >= 0"),
        ("--ready_interval=9", "ready_interval=9 must be <= trials=4"),
    ],
)
def test_binary_bad_flag_is_one_line_exit_2_before_compiling(flag, message, tmp_path):
    """In-process through the binary's parser and `main` (the exit status for real:
    `test_binary_bad_flag_exits_2_in_a_process`)."""
    out = tmp_path / "out"
    with count_compiles() as compiled:
        result = cli.run("benchmarks.tune", *_tune_flags(out), flag)
    assert result.code == 2 and compiled.programs() == []
    assert len(result.lines) == 1 and message in result.lines[0], result.stderr
    assert not out.exists()


def test_binary_refuses_a_file_as_out_before_compiling(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with count_compiles() as compiled:
        result = cli.run("benchmarks.tune", *_tune_flags(blocker))
    assert result.code == 2 and compiled.programs() == []
    assert len(result.lines) == 1 and f"--out={blocker} is a file" in result.lines[0]
    assert blocker.read_text() == "not a directory"


@pytest.mark.slow
def test_binary_bad_flag_exits_2_in_a_process(tmp_path):
    out = tmp_path / "out"
    result = cli.subprocess_run("benchmarks.tune", *_tune_flags(out), "--population=0")
    assert result.code == 2
    assert result.lines == ["tune.py: error: population=0 must be >= 1"], result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_binary_replays_a_recorded_schedule(pbt_run, tmp_path):
    """`--tuner=replay --schedule=DIR/schedule.npz` through the binary's parser and `main`
    (in-process: the population step is pbt_run's), on another seed: the recorded
    hyperparameters and parents come back, the returns differ; a missing schedule is one
    line, exit 2. (Merged with the in-process replay test, which checked the same records
    through `tuning.run`; its config checks are `test_replay_settings_are_checked`.)"""
    recorded, replayed = pbt_run[0], tmp_path / "replay"
    schedule = recorded / "schedule.npz"
    assert tuning.load_schedule(str(schedule)).source.shape == (PBT["trials"] + 1, 2)
    flags = _tune_flags(replayed, tuner="replay", seed=1)
    result = cli.run("benchmarks.tune", *flags, f"--schedule={schedule}")
    assert result.code == 0, result.stderr[-2000:]
    original, replay = _members(str(recorded)), _members(str(replayed))
    keys = lambda rows: [(r["member"], r["trial"], r["hparams"], r["parent"]) for r in rows]  # noqa: E731
    assert keys(original) == keys(replay) and len(original) == 2 * 4
    assert [r["trial_return"] for r in original] != [r["trial_return"] for r in replay]
    missing = cli.run(
        "benchmarks.tune",
        *_tune_flags(tmp_path / "x", tuner="replay"),
        f"--schedule={tmp_path}/none.npz",
    )
    assert missing.code == 2 and "none.npz" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_unwritable_out_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match=f"--out={blocker}/run is not a writable directory"):
        rundir.prepare_out_dir(str(blocker / "run"))
    assert blocker.read_text() == "not a directory"


def test_replay_settings_are_checked(pbt_run):
    schedule = str(pbt_run[0] / "schedule.npz")
    replay = dict(PBT, tuner="replay", schedule=schedule)
    with pytest.raises(ValueError, match="population=3 differs from the schedule's 2"):
        tuning.TuneConfig(**{**replay, "population": 3}).validate()
    with pytest.raises(ValueError, match="needed by, and only by, --tuner=replay"):
        tuning.TuneConfig(**{**PBT, "schedule": schedule}).validate()


def test_compare_tuners_runs_every_arm_on_every_seed_and_reports_pairs(tmp_path):
    """benchmarks.compare_tuners (issue 22's comparison) end to end at the shared sizes: a run
    directory per arm and seed as benchmarks.tune writes it, comparison.md/json with a result
    per seed and the pair's difference; a rerun reads the finished runs back; other settings
    on the same --out are refused before anything runs."""
    out = tmp_path / "cmp"
    shape = [
        f"--{k}={tiny.RUN[k]}"
        for k in ("env", "preset", "trials", "trial_length", "space", "progress_every")
    ]
    argv = [f"--out={out}", "--arms=pbt:2,random_search:2", "--pairs=pbt:2/random_search:2"]
    argv += ["--seeds=0,1", "--ready_interval=1", "--resamples=200", *shape]
    first = cli.run("benchmarks.compare_tuners", *argv)
    assert first.code == 0, first.stderr
    for arm in ("pbt-p2", "random_search-p2"):
        for seed in (0, 1):
            rows = _members(str(out / arm / f"seed{seed}"))
            assert len(rows) == 2 * tiny.RUN["trials"]
            assert {r["member"] for r in rows} == {0, 1}
    with open(out / "comparison.json") as f:
        result = json.load(f)
    for arm in ("pbt:2", "random_search:2"):
        assert len(result["arms"][arm]["best"]) == 2
        assert all(np.isfinite(x) for x in result["arms"][arm]["best"])
    (pair,) = result["pairs"]
    assert (pair["a"], pair["b"], pair["difference"]["n"]) == ("pbt:2", "random_search:2", 2)
    report = (out / "comparison.md").read_text()
    assert "| pbt:2 - random_search:2 |" in report and "| random_search:2 |" in report
    assert "pbt:2 - random_search:2:" in first.stdout

    again = cli.run("benchmarks.compare_tuners", *argv)
    assert again.code == 0 and again.stderr.count("done, read back") == 4
    with open(out / "comparison.json") as f:
        assert json.load(f)["arms"] == result["arms"]

    other = cli.run("benchmarks.compare_tuners", *argv, "--trials=3")
    assert other.code == 2
    (line,) = other.lines  # in-process the program name is pytest's
    assert line.endswith(
        f"error: {out}/pbt-p2/seed0 holds a run with trials=4, not 3: use another --out or "
        "the same settings to resume"
    )
