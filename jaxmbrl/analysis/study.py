"""The study's analyses (Zhang et al., AISTATS 2021) over finished tuning-run directories.

Input: a manifest, one entry per run directory (env, tuner, seed, dir, role 'tune' or
'transfer', for transfers source_env/source_tuner/source_fitness), written by
`jaxmbrl.experiments.study`. Output: one JSON-able dict (OUT/study.json). Statistics come
from scipy: `scipy.stats.bootstrap` (percentile intervals of the mean) and
`scipy.stats.spearmanr`; nothing here re-implements them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from jaxmbrl.experiments import study_runs
from jaxmbrl.tuners.hyperband import brackets

SPEARMAN_SOURCES = study_runs.STATIC_TUNERS


def _num(x: float | None) -> float | None:
    """JSON-safe float: NaN and inf become None."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def bootstrap_ci(
    values: list[float], confidence: float = 0.95, resamples: int = 9999, seed: int = 0
) -> dict[str, Any]:
    """Mean of the finite values and its percentile bootstrap interval (None if n < 2)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    out: dict[str, Any] = dict(mean=_num(x.mean()) if x.size else None, low=None, high=None)
    out["n"] = int(x.size)
    if x.size >= 2 and np.ptp(x) > 0:
        res = stats.bootstrap(
            (x,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        out["low"], out["high"] = (
            _num(res.confidence_interval.low),
            _num(res.confidence_interval.high),
        )
    elif x.size >= 2:  # all equal: the interval is the point
        out["low"] = out["high"] = out["mean"]
    return out


def budget_grid(trials: int, eta: int) -> list[int]:
    """Hyperband's rung budgets for max budget `trials` (Li et al.), the Spearman budgets."""
    return sorted({r for bracket in brackets(trials, eta) for _, r in bracket})


def spearman_across_budgets(
    fitness_curves: list[list[float]], budgets: list[int]
) -> list[dict[str, Any]]:
    """Spearman's rho between configurations' fitness after b and after b' trials.

    Args:
      fitness_curves: per configuration, fitness after each trial (index k: after k + 1).
      budgets: the budgets compared pairwise (b < b').

    Returns:
      One dict per pair: budget_low, budget_high, cor, p, n (configurations trained for
      both budgets; cor and p are None when n < 3 or a side is constant).
    """
    out = []
    for i, lo in enumerate(budgets):
        for hi in budgets[i + 1 :]:
            pairs = [(c[lo - 1], c[hi - 1]) for c in fitness_curves if len(c) >= hi]
            pairs = [(a, b) for a, b in pairs if not (math.isnan(a) or math.isnan(b))]
            cor = p = None
            if len(pairs) >= 3:
                x, y = map(np.asarray, zip(*pairs, strict=True))
                res = stats.spearmanr(x, y)
                cor, p = _num(res.statistic), _num(res.pvalue)
            out.append(dict(budget_low=lo, budget_high=hi, cor=cor, p=p, n=len(pairs)))
    return out


def _by(entries, *keys):
    out = defaultdict(list)
    for e in entries:
        out[tuple(e[k] for k in keys)].append(e)
    return out


def analyse(manifest: list[dict], settings: dict[str, Any]) -> dict[str, Any]:
    """All analyses of the study; `settings`: eta, confidence, resamples, trials per env."""
    conf, resamples = settings["confidence"], settings["resamples"]
    ci = lambda v: bootstrap_ci(v, conf, resamples)  # noqa: E731
    runs = {e["dir"]: study_runs.load_run(e["dir"]) for e in manifest}
    tune = [e for e in manifest if e["role"] == "tune"]
    study: dict[str, Any] = dict(envs={}, divergences=divergences(manifest, runs))
    for (env,), entries in _by(tune, "env").items():
        trials = settings["trials"][env]
        res: dict[str, Any] = dict(tuners={}, spearman={}, budget={})
        best = {}
        for (tuner,), group in sorted(_by(entries, "tuner").items()):
            group = sorted(group, key=lambda e: e["seed"])
            per_seed, curves = [], []
            for e in group:
                run = runs[e["dir"]]
                kind = "default" if tuner == "default" else tuner
                b = study_runs.best_of_run(run, kind, trials)
                if b is None:
                    continue
                lineages = study_runs.member_lineages(run)
                worst = min(lineages, key=lambda x: x["fitness"]) if lineages else {}
                b.update(  # for the videos of the best and the worst member
                    seed=e["seed"],
                    dir=e["dir"],
                    worst_member=worst.get("member"),
                    worst_fitness=worst.get("fitness"),
                )
                best.setdefault(tuner, []).append(b)
                per_seed.append(b)
                curves.append(dict(seed=e["seed"], trial=b["trial"], returns=b["returns"]))
            row = dict(
                seeds=[b["seed"] for b in per_seed],
                best_final_return=[_num(b["final_return"]) for b in per_seed],
                best_final_return_ci=ci([b["final_return"] for b in per_seed]),
                member_trials=[len(runs[e["dir"]]["rows"]) for e in group],
                best_curves=curves,
            )
            if tuner == "default":
                means = [
                    float(np.nanmean(study_runs.member_final_returns(runs[e["dir"]])))
                    for e in group
                ]
                row["member_mean_final_return"] = [_num(m) for m in means]
                row["member_mean_final_return_ci"] = ci(means)
                row["mean_curves"] = [
                    dict(
                        zip(
                            ("trial", "returns"), study_runs.mean_curve(runs[e["dir"]]), strict=True
                        )
                    )
                    for e in group
                ]
            res["tuners"][tuner] = row
        for src in SPEARMAN_SOURCES:
            if src not in res["tuners"]:
                continue
            curves = [
                tr["fitness"]
                for e in entries
                if e["tuner"] == src
                for tr in study_runs.trajectory_table(runs[e["dir"]])
            ]
            grid = budget_grid(trials, settings["eta"])
            res["spearman"][src] = dict(
                budgets=grid,
                configurations=len(curves),
                pairs=spearman_across_budgets(curves, grid),
            )
        res["static_vs_dynamic"] = static_vs_dynamic(best, ci)
        res["best"] = {t: [_strip(b) for b in bs] for t, bs in best.items()}
        study["envs"][env] = res
    study["transfer"] = transfer(manifest, runs, study, ci)
    return study


def _strip(b: dict) -> dict:
    keep = (
        "kind",
        "seed",
        "dir",
        "member",
        "fitness",
        "final_return",
        "hparams",
        "budget",
        "trained",
        "worst_member",
        "worst_fitness",
    )
    out = {k: b[k] for k in keep if k in b}
    for k in ("fitness", "final_return", "worst_fitness"):
        if k in out:
            out[k] = _num(out[k])
    if isinstance(out.get("hparams"), list):  # dynamic: the last hyperparameters used
        out["hparams"] = out["hparams"][-1] if out["hparams"] else None
    return out


def static_vs_dynamic(best: dict[str, list[dict]], ci) -> dict[str, Any]:
    """Per seed: the best static incumbent (random search / Hyperband) vs the best dynamic
    member (PBT / PBT-BT), their final returns and the paired difference."""

    def per_seed(tuners):
        out = {}
        for t in tuners:
            for b in best.get(t, []):
                if b["seed"] not in out or b["fitness"] > out[b["seed"]]["fitness"]:
                    out[b["seed"]] = dict(b, tuner=t)
        return out

    s, d = per_seed(study_runs.STATIC_TUNERS), per_seed(study_runs.DYNAMIC_TUNERS)
    seeds = sorted(set(s) & set(d))
    diff = [d[k]["final_return"] - s[k]["final_return"] for k in seeds]
    return dict(
        seeds=seeds,
        static=[
            dict(seed=k, tuner=s[k]["tuner"], final_return=_num(s[k]["final_return"]))
            for k in seeds
        ],
        dynamic=[
            dict(seed=k, tuner=d[k]["tuner"], final_return=_num(d[k]["final_return"]))
            for k in seeds
        ],
        static_ci=ci([s[k]["final_return"] for k in seeds]),
        dynamic_ci=ci([d[k]["final_return"] for k in seeds]),
        dynamic_minus_static_ci=ci(diff),
    )


def transfer(manifest, runs, study, ci) -> list[dict[str, Any]]:
    """How much of each replayed configuration's gain over the default survives.

    gain_tuned = the replayed member's final return in its tuning run - the default's mean
    final return (source env, tuning seeds); gain_new = mean final return of every replayed
    member on the new seeds - the default's on the same new seeds (target env);
    survival = gain_new / gain_tuned (None unless gain_tuned > 0).
    """
    entries = [e for e in manifest if e["role"] == "transfer"]
    default_new = {
        env: [x for e in group for x in study_runs.member_final_returns(runs[e["dir"]])]
        for (env,), group in _by([e for e in entries if e["tuner"] == "default"], "env").items()
    }
    out = []
    replays = [e for e in entries if e["tuner"] != "default"]
    for (env, src_env, tuner), group in sorted(_by(replays, "env", "source_env", "tuner").items()):
        finals = [x for e in group for x in study_runs.member_final_returns(runs[e["dir"]])]
        src = study["envs"].get(src_env, {}).get("tuners", {}).get("default", {})
        default_src = src.get("member_mean_final_return_ci", {}).get("mean")
        tuned = group[0]["source_fitness"]
        new = ci(finals)
        base = ci(default_new.get(env, []))
        gain_tuned = None if default_src is None or tuned is None else tuned - default_src
        gain_new = (
            None if new["mean"] is None or base["mean"] is None else new["mean"] - base["mean"]
        )
        survival = (
            gain_new / gain_tuned
            if gain_new is not None and gain_tuned and gain_tuned > 0
            else None
        )
        out.append(
            dict(
                env=env,
                source_env=src_env,
                tuner=tuner,
                kind="static" if tuner in study_runs.STATIC_TUNERS else "dynamic",
                schedule=group[0]["schedule"],
                seeds=sorted(e["seed"] for e in group),
                tuned_final_return=_num(tuned),
                default_source=_num(default_src),
                replay=new,
                default_new=base,
                gain_tuned=_num(gain_tuned),
                gain_new=_num(gain_new),
                survival=_num(survival),
            )
        )
    return out


def divergences(manifest: list[dict], runs: dict) -> dict[str, Any]:
    """Every member-trial whose simulation diverged, and per (env, role, tuner) how many
    members (slots of a run) broke the simulator at least once."""
    rows, counts = [], {}
    for e in manifest:
        run = runs[e["dir"]]
        slots = {r["member"] for r in run["rows"]}
        broken = set()
        for r in run["rows"]:
            if r["diverged"]:
                broken.add(r["member"])
                rows.append(
                    dict(
                        env=e["env"],
                        role=e["role"],
                        tuner=e["tuner"],
                        seed=e["seed"],
                        dir=e["dir"],
                        member=r["member"],
                        trial=r["trial"],
                        step=r["step"],
                        hparams=r["hparams"],
                    )
                )
        key = f"{e['env']}/{e['role']}/{e['tuner']}"
        c = counts.setdefault(key, dict(members=0, broke=0, diverged_trials=0, runs=0))
        c["runs"] += 1
        c["members"] += len(slots)
        c["broke"] += len(broken)
        c["diverged_trials"] += sum(bool(r["diverged"]) for r in run["rows"])
    return dict(total=len(rows), counts=counts, rows=rows)
