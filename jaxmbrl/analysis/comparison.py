"""A tuner comparison read back: per arm and seed the tuner's result, per pair of arms the
difference with a bootstrap interval (PB2 of Parker-Holder et al., NeurIPS 2020, against
PBT; BOHB of Falkner et al., ICML 2018, against Hyperband; the setting of Zhang et al.,
AISTATS 2021).

An arm's result on a seed is what the tuner reports (`study_runs.best_of_run`): the final
return (mean of the last 3 trials) of the best final lineage for PBT and PB2, of the
incumbent trained for the full budget for Hyperband and BOHB. PBT-style arms also get the
mean final return of their whole final population.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from jaxmbrl.analysis.study import bootstrap_ci
from jaxmbrl.analysis.study_verdicts import _ci, bootstrap_difference
from jaxmbrl.experiments import comparison, study_runs


def arm_results(manifest: list[dict]) -> dict[str, dict[str, Any]]:
    """Per arm (in manifest order): seeds, best final return, population mean, cost."""
    arms: dict[str, dict[str, Any]] = {}
    for entry in manifest:
        settings = entry["settings"]
        run = study_runs.load_run(entry["dir"])
        best = study_runs.best_of_run(run, settings["tuner"], settings["trials"])
        dynamic = settings["tuner"] in study_runs.DYNAMIC_TUNERS
        finals = study_runs.member_final_returns(run) if dynamic and run["rows"] else []
        summary = entry.get("summary") or {}
        arm = arms.setdefault(
            entry["arm"],
            dict(seeds=[], best=[], population_mean=[], member_trials=[], wall=[], compile=[]),
        )
        arm["seeds"].append(settings["seed"])
        arm["best"].append(None if best is None else best["final_return"])
        finite = [x for x in finals if np.isfinite(x)]
        arm["population_mean"].append(float(np.mean(finite)) if finite else None)
        arm["member_trials"].append(len(run["rows"]))
        arm["wall"].append(summary.get("wall_seconds"))
        arm["compile"].append(summary.get("compile_seconds"))
    return arms


def compare(manifest: list[dict], pairs: tuple[str, ...], confidence: float, resamples: int):
    """The runs of `manifest` read back and summarised (`summarise`)."""
    return summarise(arm_results(manifest), pairs, confidence, resamples)


def summarise(
    arms: dict[str, dict[str, Any]], pairs: tuple[str, ...], confidence: float, resamples: int
) -> dict[str, Any]:
    """Arms (`arm_results`) with bootstrap intervals of their mean result (`best_ci`,
    `population_mean_ci`); per pair 'A/B' the difference of mean results A - B with its
    interval and a reading: A higher, B higher (the interval excludes 0) or no difference."""
    for arm in arms.values():
        arm["best_ci"] = bootstrap_ci(arm["best"], confidence, resamples)
        arm["population_mean_ci"] = bootstrap_ci(arm["population_mean"], confidence, resamples)
    out_pairs = []
    for pair in pairs:
        (ta, pa), (tb, pb) = comparison.parse_pair(pair)
        a, b = comparison.arm_name(ta, pa), comparison.arm_name(tb, pb)
        diff = bootstrap_difference(arms[a]["best"], arms[b]["best"], confidence, resamples)
        if diff["low"] is not None and diff["low"] > 0:
            reading = f"{a} higher"
        elif diff["high"] is not None and diff["high"] < 0:
            reading = f"{b} higher"
        else:
            reading = "no difference shown"
        out_pairs.append(dict(a=a, b=b, difference=diff, reading=reading))
    return dict(arms=arms, pairs=out_pairs)


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def to_markdown(result: dict, settings: dict) -> str:
    """The comparison's tables: arms (per seed, mean [CI]) and pairs (A - B [CI])."""
    level = f"{100 * settings['confidence']:g}%"
    lines = [
        f"# Tuners compared on {settings['env']} ({settings['preset']} preset)",
        "",
        f"{settings['trials']} trials per member, a tuner update every "
        f"{settings['ready_interval']} trials, space `{settings['space']}`, seeds "
        f"{', '.join(map(str, settings['seeds']))}. Result: final return (mean of the last 3 "
        "trials) of the tuner's best (PBT/PB2: best final lineage; Hyperband/BOHB: incumbent "
        f"at the full budget); intervals: {level} percentile bootstrap over seeds.",
        "",
        "| arm | per seed | mean [CI] (n) | population mean [CI] | member-trials | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for name, arm in result["arms"].items():
        per_seed = ", ".join(_f(x) for x in arm["best"])
        pop = _ci(arm["population_mean_ci"]) if arm["population_mean_ci"]["n"] else "-"
        walls = [w for w in arm["wall"] if w is not None]
        wall = f"{np.mean(walls):.0f}" if walls else "n/a"
        trials = f"{np.mean(arm['member_trials']):.0f}"
        lines.append(
            f"| {name} | {per_seed} | {_ci(arm['best_ci'])} | {pop} | {trials} | {wall} |"
        )
    lines += ["", "| A - B | difference [CI] (n) | reading |", "|---|---|---|"]
    for p in result["pairs"]:
        lines.append(f"| {p['a']} - {p['b']} | {_ci(p['difference'])} | {p['reading']} |")
    return "\n".join(lines) + "\n"


def write_comparison(manifest: list[dict], settings: dict, out: str) -> dict:
    """Writes OUT/comparison.json and OUT/comparison.md; returns the result."""
    result = compare(manifest, settings["pairs"], settings["confidence"], settings["resamples"])
    result["settings"] = settings
    with open(os.path.join(out, "comparison.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(out, "comparison.md"), "w") as f:
        f.write(to_markdown(result, settings))
    return result
