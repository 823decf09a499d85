"""The study's verdicts: each published finding of Zhang et al. (AISTATS 2021) against what a
run measured (`analysis.study.analyse`'s dict), as supported, not supported or inconclusive.

Pure functions of numbers (no JAX, no files), so that the logic is tested on constructed
data where the answer is known. The rules, one per finding:

1. Tuned beats default: per seed, the mean over tuners of (tuner's incumbent final return -
   the default's best-of-N member), a selection-matched difference (both are a best of
   several members); bootstrap interval over seeds.
2. Dynamic wins on final return: per seed, best dynamic (PBT, PBT-BT) - best static (random
   search, Hyperband) final return; bootstrap interval over seeds.
3. Static transfers better: a replay's gain over the default on new seeds/envs (its final
   return there - the default's there), static replays - dynamic replays; two-sample
   bootstrap interval. Not the share of the tuning gain kept (the report shows it): that
   ratio explodes where the tuned gain is near 0 (-441 for a gain of 0.03 return points).
4. Weak or negative Spearman across budgets: each budget pair's rho gets a Fisher-z interval
   (standard error 1.06 / sqrt(n - 3), Fieller et al. 1957); a pair is weak if the interval
   lies below `WEAK_RHO`, strong if above; supported if most judged pairs are weak.
5. Tuned PETS breaks the simulator: members that diverged in tuned runs vs in default runs,
   one-sided Fisher exact test (scipy.stats.fisher_exact).

A difference is supported when its interval lies above 0, not supported when below (the
opposite holds), and inconclusive when it spans 0 or has fewer than 2 values.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from scipy import stats

from jaxmbrl.analysis.study import bootstrap_ci

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
WEAK_RHO = 0.5  # below: a weak rank correlation ("weak or even negative")
MIN_SPEARMAN_N = 10  # configurations a budget pair needs to be judged
ALPHA = 0.05

# As stated in shared/reference/hpo_for_mbrl.md, "The study's findings, as published".
PAPER = {
    "tuned": "Automated HPO of PETS yields significantly better returns than the experts' "
    "settings, on every task tried.",
    "dynamic": "Tuning hyperparameters dynamically (PBT, PBT-BT) improves final performance "
    "further over static configurations.",
    "transfer": "Static configurations are more robust to transfer (new runs, other tasks) "
    "than dynamic schedules.",
    "spearman": "Weak or even negative Spearman rank correlation across budgets in most "
    "environments.",
    "divergence": "With enough tuning PETS breaks MuJoCo (the simulation becomes unstable).",
}
FINDINGS = tuple(PAPER)


def _f(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(ci: dict, digits: int = 1) -> str:
    if ci["mean"] is None:
        return "n/a"
    if ci["low"] is None:
        return f"{_f(ci['mean'], digits)} (n={ci['n']})"
    low, high = _f(ci["low"], digits), _f(ci["high"], digits)
    return f"{_f(ci['mean'], digits)} [{low}, {high}] (n={ci['n']})"


def interval_verdict(ci: dict, what: str) -> tuple[str, str]:
    """Verdict on a difference that the finding says is positive, from its interval."""
    if ci["mean"] is None or ci["n"] < 2 or ci["low"] is None:
        return INCONCLUSIVE, f"fewer than 2 values of {what}: no interval"
    if ci["low"] > 0:
        return SUPPORTED, f"the interval of {what} lies above 0"
    if ci["high"] < 0:
        return NOT_SUPPORTED, f"the interval of {what} lies below 0 (the opposite holds)"
    return INCONCLUSIVE, f"the interval of {what} spans 0"


def bootstrap_difference(
    a: list[float], b: list[float], confidence: float = 0.95, resamples: int = 9999
) -> dict[str, Any]:
    """mean(a) - mean(b) with a two-sample percentile bootstrap interval (None if n < 2)."""
    x = np.asarray([v for v in a if v is not None and math.isfinite(v)], np.float64)
    y = np.asarray([v for v in b if v is not None and math.isfinite(v)], np.float64)
    n = int(min(x.size, y.size))
    out: dict[str, Any] = dict(mean=None, low=None, high=None, n=n)
    if x.size and y.size:
        out["mean"] = float(x.mean() - y.mean())
    if n >= 2 and (np.ptp(x) > 0 or np.ptp(y) > 0):
        res = stats.bootstrap(
            (x, y),
            lambda p, q, axis=-1: np.mean(p, axis=axis) - np.mean(q, axis=axis),
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(0),
        )
        out["low"], out["high"] = map(float, res.confidence_interval)
    elif n >= 2:
        out["low"] = out["high"] = out["mean"]
    return out


def rho_interval(cor: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Fisher-z interval of Spearman's rho (Fieller et al.'s standard error 1.06/sqrt(n-3))."""
    z = math.atanh(max(-0.999999, min(0.999999, cor)))
    half = stats.norm.ppf(0.5 + confidence / 2) * 1.06 / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def spearman_verdict(
    pairs: list[dict], min_n: int = MIN_SPEARMAN_N, confidence: float = 0.95
) -> tuple[str, str, str]:
    """(verdict, reason, estimate) over budget pairs (dicts with cor, p, n)."""
    judged = [p for p in pairs if p["cor"] is not None and p["n"] >= min_n]
    if not judged:
        most = max((p["n"] for p in pairs), default=0)
        return INCONCLUSIVE, f"no budget pair has >= {min_n} configurations (most: {most})", "n/a"
    weak = strong = 0
    for p in judged:
        low, high = rho_interval(p["cor"], p["n"], confidence)
        weak += high < WEAK_RHO
        strong += low > WEAK_RHO
    estimate = "; ".join(
        f"{p['budget_low']}->{p['budget_high']}: {p['cor']:.2f} (p={_f(p['p'], 3)}, n={p['n']})"
        for p in judged
    )
    counts = f"{weak} of {len(judged)} pairs weak, {strong} strong (rho interval vs {WEAK_RHO})"
    if weak * 2 > len(judged):
        return SUPPORTED, counts, estimate
    if strong * 2 >= len(judged):
        return NOT_SUPPORTED, counts, estimate
    return INCONCLUSIVE, counts, estimate


def divergence_verdict(
    tuned_broke: int, tuned_members: int, default_broke: int, default_members: int
) -> tuple[str, str]:
    """Members whose physics broke: tuned runs vs default runs (one-sided Fisher exact)."""
    if tuned_broke == 0:
        return INCONCLUSIVE, (
            "no tuned member broke the simulator (the paper saw it on HalfCheetah after long "
            "tuning)"
        )
    table = [
        [tuned_broke, tuned_members - tuned_broke],
        [default_broke, default_members - default_broke],
    ]
    p = float(stats.fisher_exact(table, alternative="greater").pvalue)
    if p < ALPHA:
        return SUPPORTED, f"tuned members broke it more often than default ones (p={p:.3f})"
    if default_members and default_broke / default_members >= tuned_broke / tuned_members:
        return NOT_SUPPORTED, f"default members broke it as often (p={p:.3f})"
    return INCONCLUSIVE, f"too few breaks to tell tuned from default (p={p:.3f})"


def tuned_minus_default(tuners: dict[str, dict]) -> list[float]:
    """Per seed: mean over tuners of (incumbent's final return - default's best member)."""
    default = tuners.get("default")
    if default is None:
        return []
    base = dict(zip(default["seeds"], default["best_final_return"], strict=True))
    out = []
    for seed, b in base.items():
        diffs = [
            dict(zip(row["seeds"], row["best_final_return"], strict=True)).get(seed)
            for name, row in tuners.items()
            if name != "default"
        ]
        diffs = [d - b for d in diffs if d is not None and b is not None]
        if diffs:
            out.append(float(np.mean(diffs)))
    return out


def _row(finding: str, env: str, estimate: str, verdict: tuple[str, str]) -> dict[str, str]:
    return dict(
        finding=finding,
        env=env,
        paper=PAPER[finding],
        measured=estimate,
        verdict=verdict[0],
        reason=verdict[1],
    )


def verdict_table(
    study: dict,
    confidence: float = 0.95,
    resamples: int = 9999,
    min_spearman_n: int = MIN_SPEARMAN_N,
    root: str | None = None,
) -> list[dict[str, Any]]:
    """One row per finding (findings 1, 2 and 4: per env): paper, measured, verdict, reason.

    Args:
      study: `analysis.study.analyse`'s dict.
      confidence, resamples: of the bootstrap intervals.
      min_spearman_n: configurations a budget pair needs to be judged.
      root: run directories in the divergence row are linked relative to it (the report's
        directory); None: as recorded.
    """
    rows = []
    ci = lambda v: bootstrap_ci(v, confidence, resamples)  # noqa: E731
    for env, res in study["envs"].items():
        diff = ci(tuned_minus_default(res["tuners"]))
        what = "tuned - default (best member), per seed"
        rows.append(_row("tuned", env, _ci(diff), interval_verdict(diff, what)))
    for env, res in study["envs"].items():
        diff = res["static_vs_dynamic"]["dynamic_minus_static_ci"]
        what = "best dynamic - best static, per seed"
        rows.append(_row("dynamic", env, _ci(diff), interval_verdict(diff, what)))
    gains = {k: [] for k in ("static", "dynamic")}
    for r in study["transfer"]:
        if r["gain_new"] is not None:
            gains[r["kind"]].append(r["gain_new"])
    diff = bootstrap_difference(gains["static"], gains["dynamic"], confidence, resamples)
    estimate = (
        f"static - dynamic gain over the default on new seeds/envs: {_ci(diff)} "
        f"({len(gains['static'])} static, {len(gains['dynamic'])} dynamic replays)"
    )
    rows.append(_row("transfer", "all", estimate, interval_verdict(diff, "the difference")))
    for env, res in study["envs"].items():
        pairs = [p for sp in res["spearman"].values() for p in sp["pairs"]]
        verdict, reason, estimate = spearman_verdict(pairs, min_spearman_n, confidence)
        rows.append(_row("spearman", env, estimate, (verdict, reason)))
    counts = study["divergences"]["counts"]
    tuned = [v for k, v in counts.items() if not k.endswith("/default")]
    default = [v for k, v in counts.items() if k.endswith("/default")]
    tb, tm = sum(v["broke"] for v in tuned), sum(v["members"] for v in tuned)
    db, dm = sum(v["broke"] for v in default), sum(v["members"] for v in default)
    estimate = f"members that broke it: tuned {tb} of {tm}, default {db} of {dm}"
    where = study["divergences"]["rows"][:3]
    if where:
        estimate += "; e.g. " + ", ".join(
            f"[{r['tuner']} seed {r['seed']} member {r['member']} trial {r['trial']}]"
            f"({os.path.relpath(r['dir'], root) if root else r['dir']}/members.jsonl)"
            for r in where
        )
    rows.append(_row("divergence", "all", estimate, divergence_verdict(tb, tm, db, dm)))
    return rows
