"""The study binary and its analyses: flags, statistics against scipy, replay, resume."""

import json
import math
import os
import subprocess
import sys

import cli
import numpy as np
import pytest
from compiles import count_compiles
from scipy import stats

from jaxmbrl import tuners
from jaxmbrl.analysis import study as analysis
from jaxmbrl.experiments import study, study_runs
from jaxmbrl.tuners.base import Decision

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny but real: cartpole, 3 slots, 3 trials of 10 steps, one seed, one transfer seed.
TINY_FLAGS = [
    "--scale=ci",
    "--seeds=0",
    "--transfer_seeds=100",
    "--population=3",
    "--trials=3",
    "--trial_length=10",
    "--ready_interval=1",
    "--resamples=1000",
]


def _binary(*args, timeout=1500):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.study", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "flag, words",
    [
        ("--scale=huge", ["huge", "ci"]),
        ("--envs=cartpole,moon", ["moon", "half_cheetah"]),
        ("--tuners=random", ["random", "random_search"]),
        ("--seeds=0,a", ["seeds=0,a", "int"]),
        ("--trials=-1", ["trials=-1"]),
        ("--transfer_seeds=0", ["transfer_seeds"]),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(flag, words, tmp_path):
    """In-process through the binary's parser and `main`, before any program compiles (the
    exit status for real: `test_bad_flag_exits_2_in_a_process`)."""
    with count_compiles() as compiled:
        result = cli.run("benchmarks.study", flag, f"--out={tmp_path}")
    assert result.code == 2 and compiled.programs() == []
    assert len(result.lines) == 1 and all(w in result.lines[0] for w in words), result.stderr
    assert not os.listdir(tmp_path)


def test_bad_flag_exits_2_in_a_process(tmp_path):
    result = _binary("--scale=huge", f"--out={tmp_path}")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "huge" in lines[0] and "ci" in lines[0], result.stderr
    assert not os.listdir(tmp_path)


def test_a_run_with_other_settings_is_refused_before_anything_runs(tmp_path):
    run_dir = tmp_path / "cartpole" / "pbt" / "seed0"
    run_dir.mkdir(parents=True)
    settings = study.tuning_api(study.tune_settings(study.make_config(), "cartpole", "pbt", 0))
    (run_dir / "config.json").write_text(json.dumps(dict(settings, population=7)))
    with count_compiles() as compiled:
        result = cli.run("benchmarks.study", f"--out={tmp_path}", "--seeds=0", "--tuners=pbt")
    assert result.code == 2 and compiled.programs() == []
    assert "population=7" in result.stderr and len(result.lines) == 1
    assert sorted(os.listdir(run_dir)) == ["config.json"]


def test_scales_and_budgets():
    # Li et al.'s brackets for R = 9, eta = 3, counted by hand with continued promotions:
    # 9x1 + 3x(3-1) + 1x(9-3) = 21; 5x3 + 1x(9-3) = 21; 3x9 = 27.
    assert study.hyperband_member_trials(9, 3) == 69
    for scale in study.SCALES:
        config = study.make_config(scale)
        for env in config.envs:
            n, t = study.env_population(config, env), study.env_trials(config, env)
            hb = study.hyperband_member_trials(t, config.eta)
            assert abs(n * t - hb) <= t / 2 + 1, (scale, env, n * t, hb)
    assert study.make_config("paper").preset == "paper"
    with pytest.raises(ValueError, match="tuners entry 'x'"):
        study.make_config(tuners=("x",))


def test_bootstrap_and_spearman_use_scipy_and_contain_the_estimate():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10):
        x = rng.normal(size=n).tolist()
        ci = analysis.bootstrap_ci(x, resamples=2000)
        assert ci["n"] == n and ci["low"] <= np.mean(x) <= ci["high"]
    assert analysis.bootstrap_ci([1.0, math.inf, math.nan, 3.0])["mean"] == 2.0
    assert analysis.bootstrap_ci([5.0])["low"] is None
    curves = [rng.normal(size=9).tolist() for _ in range(6)] + [[0.0, 1.0]]
    pairs = analysis.spearman_across_budgets(curves, [1, 3, 9])
    assert [(p["budget_low"], p["budget_high"]) for p in pairs] == [(1, 3), (1, 9), (3, 9)]
    for p in pairs:
        lo, hi = p["budget_low"] - 1, p["budget_high"] - 1
        want = stats.spearmanr([c[lo] for c in curves[:6]], [c[hi] for c in curves[:6]])
        assert p["n"] == 6
        assert p["cor"] == pytest.approx(want.statistic) and p["p"] == pytest.approx(want.pvalue)
    assert analysis.spearman_across_budgets(curves[:2], [1, 3])[0]["cor"] is None


def test_window_fitness_and_lineage_through_copies_and_archive_restores():
    assert study_runs.window_fitness([1, 2, 3, 4], [False] * 4) == [1, 1.5, 2, 3]
    assert study_runs.window_fitness([1, 2, 3], [False, True, False])[1:] == [-math.inf] * 2
    # 3 slots, 4 decisions: slot 2 copies slot 0 at step 2; slot 1 restores archive 0 at step 3
    source = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 0], [0, 3, 2]])
    restart = np.zeros((4, 3), bool)
    restart[0] = True
    sched = Decision(source, restart, np.zeros((4, 3, 1)), restart, np.ones((4, 3), int))
    slots, restored = study_runs.lineage_slots(sched, 2)
    assert slots.tolist() == [0, 0, 2, 2] and restored is None
    np.testing.assert_array_equal(tuners.lineage(sched, 2)[0], slots)
    slots, restored = study_runs.lineage_slots(sched, 1)
    assert slots.tolist() == [-1, -1, -1, 1] and restored == 3


def test_fixed_schedules_hold_values_and_reencode_across_spaces():
    a = tuners.get_space("planning", env="cartpole")
    b = tuners.get_space("planning", env="reacher")  # plan_hor 5-40 instead of 5-60
    unit = np.asarray(
        a.to_unit(
            dict(num_cem_iters=4, cem_popsize=300, cem_alpha=0.1, cem_elites_ratio=0.1, plan_hor=50)
        )
    )
    moved = b.to_dicts(study_runs.reencode(unit, a, b)[None])[0]
    assert moved["cem_popsize"] == 300 and moved["plan_hor"] == 40  # clipped to reacher's range
    sched = study_runs.fixed_schedule(unit, 3, 2)
    assert sched.hparams.shape == (1, 3, a.dim) and sched.restart.all()
    assert (sched.source == np.arange(3)).all() and (sched.budget == 2).all()


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    result = _binary(f"--out={out}", *TINY_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "study.json") as f:
        return out, json.load(f), result


@pytest.mark.slow
def test_study_writes_every_run_and_the_report(tiny_study):
    out, result, proc = tiny_study
    for tuner in study.STUDY_TUNERS:
        run_dir = out / "cartpole" / tuner / "seed0"
        assert (run_dir / "summary.json").exists() and (run_dir / "members.jsonl").exists()
    for name in (
        "report.md",
        "learning_curves.png",
        "final_returns.png",
        "spearman.png",
        "static_vs_dynamic.png",
        "transfer.png",
        "manifest.json",
    ):
        assert os.path.getsize(out / name) > 500, name
    for tuner in ("pbt", "pbt_bt"):
        run_dir = out / "cartpole" / tuner / "seed0"
        for name in ("best_schedule.png", "best_schedule.json", "schedule.json"):
            assert (run_dir / name).exists()
    assert {r["tuner"] for r in result["transfer"]} == set(study.TUNERS)
    assert "(5) members that broke the simulator" in proc.stdout
    # the default run holds the space's defaults in every record
    space = study.searched_space(study.make_config(trials=3, trial_length=10), "cartpole")
    default = space.to_dicts(np.asarray(space.default_unit())[None])[0]
    rows = study_runs.load_run(str(out / "cartpole" / "default" / "seed0"))["rows"]
    assert len(rows) == 9 and all(r["hparams"] == pytest.approx(default) for r in rows)


@pytest.mark.slow
def test_spearman_in_study_json_equals_scipy_on_stored_returns(tiny_study):
    out, result, _ = tiny_study
    rows = study_runs.load_run(str(out / "cartpole" / "random_search" / "seed0"))["rows"]
    returns = {}
    for r in sorted(rows, key=lambda r: r["trial"]):
        returns.setdefault(r["member"], []).append(r["trial_return"])
    sp = result["envs"]["cartpole"]["spearman"]["random_search"]
    assert sp["budgets"] == [1, 3] and sp["configurations"] == 3
    (pair,) = sp["pairs"]
    after = lambda xs, b: np.mean(xs[max(0, b - 3) : b])  # noqa: E731
    want = stats.spearmanr(
        [after(x, 1) for x in returns.values()], [after(x, 3) for x in returns.values()]
    )
    assert pair["n"] == 3
    assert pair["cor"] == pytest.approx(want.statistic)
    assert pair["p"] == pytest.approx(want.pvalue)


@pytest.mark.slow
def test_bootstrap_intervals_contain_their_estimates(tiny_study):
    _, result, _ = tiny_study
    found = []

    def walk(x):
        if isinstance(x, dict):
            if {"mean", "low", "high", "n"} <= set(x) and x["low"] is not None:
                found.append(x)
                assert x["low"] - 1e-9 <= x["mean"] <= x["high"] + 1e-9, x
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(result)
    assert len(found) >= 2  # the replays pool 3 members each


@pytest.mark.slow
def test_replay_through_the_binary_reproduces_the_recorded_hyperparameters(tiny_study):
    out, result, _ = tiny_study
    by_tuner = {r["tuner"]: r for r in result["transfer"]}
    manifest = json.loads((out / "manifest.json").read_text())
    for tuner in ("random_search", "pbt"):
        entry = next(e for e in manifest if e["role"] == "transfer" and e["tuner"] == tuner)
        source = study_runs.load_run(entry["source_dir"])
        with open(os.path.join(entry["source_dir"], "summary.json")) as f:
            summary = json.load(f)
        lineages = study_runs.member_lineages(source)
        best = max(lineages, key=lambda x: x["fitness"])
        # the fitness recomputed along the lineage is the one the run's program computed
        assert best["fitness"] == pytest.approx(summary["last_step"]["best_fitness"], rel=1e-5)
        assert by_tuner[tuner]["tuned_final_return"] == pytest.approx(best["fitness"])
        if tuner == "pbt":
            ran = Decision(*(x[:3] for x in source["schedule"]))  # the 3 steps that ran
            slots = tuners.lineage(ran, best["member"])[0]
        else:
            slots = [best["member"]] * source["schedule"].source.shape[0]
        want = {r["trial"]: r["hparams"] for r in source["rows"] if r["member"] == slots[r["step"]]}
        replay = study_runs.load_run(entry["dir"])["rows"]
        assert len(replay) == 9 and len(want) == 3
        for row in replay:
            assert row["hparams"] == pytest.approx(want[row["trial"]]), (tuner, row)


@pytest.mark.slow
def test_rerun_resumes_and_skips_finished_runs(tiny_study):
    out, result, _ = tiny_study
    again = _binary(f"--out={out}", *TINY_FLAGS, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "running" not in again.stderr and again.stderr.count("done, skipped") == 10
    with open(out / "study.json") as f:
        second = json.load(f)
    assert second["envs"] == result["envs"] and second["transfer"] == result["transfer"]
