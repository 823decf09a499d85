"""OUT/report.md of the study (Zhang et al., AISTATS 2021) from `analysis.study`'s dict.

Each of the paper's five findings gets the numbers that bear on it and a plain verdict at
the scale that was run; the verdicts are mechanical (interval overlap, sign), the caveats
next to them are the reader's to weigh.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxmbrl.analysis import plots, study_plots, study_verdicts, study_videos
from jaxmbrl.analysis import study as analysis


def _f(x: Any, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(ci: dict) -> str:
    if ci["mean"] is None:
        return "n/a"
    if ci["low"] is None:
        return f"{_f(ci['mean'])} (n={ci['n']})"
    return f"{_f(ci['mean'])} [{_f(ci['low'])}, {_f(ci['high'])}] (n={ci['n']})"


def _above(a: dict, b: dict) -> str:
    """'yes' if a's interval lies above b's, 'no' if below, else 'inconclusive'."""
    if None in (a["mean"], b["mean"]):
        return "n/a"
    if a["low"] is not None and b["high"] is not None and a["low"] > b["high"]:
        return "yes"
    if a["high"] is not None and b["low"] is not None and a["high"] < b["low"]:
        return "no"
    return "inconclusive (intervals overlap)"


def findings(study: dict) -> list[str]:
    lines = []
    for env, res in study["envs"].items():
        t = res["tuners"]
        if "default" in t:
            base = t["default"]["member_mean_final_return_ci"]
            for tuner, row in t.items():
                if tuner != "default":
                    lines.append(
                        f"(1) {env}: {tuner} best {_ci(row['best_final_return_ci'])} "
                        f"above default mean {_ci(base)}: "
                        f"{_above(row['best_final_return_ci'], base)}"
                    )
        sd = res["static_vs_dynamic"]
        lines.append(
            f"(2) {env}: best dynamic minus best static, per seed: "
            f"{_ci(sd['dynamic_minus_static_ci'])}"
        )
        for src, sp in res["spearman"].items():
            cors = [p["cor"] for p in sp["pairs"] if p["cor"] is not None]
            lines.append(
                f"(4) {env}/{src}: Spearman across budgets "
                + (
                    ", ".join(
                        f"{p['budget_low']}->{p['budget_high']}: "
                        f"{_f(p['cor'], 2)} (p={_f(p['p'], 2)}, n={p['n']})"
                        for p in sp["pairs"]
                    )
                )
                + (f"; min {min(cors):.2f}" if cors else "")
            )
    def _kind(field: str, kind: str) -> str:
        xs = [r[field] for r in study["transfer"] if r["kind"] == kind]
        return ", ".join(_f(x, 2) for x in xs) or "none"

    lines.append(
        "(3) gain over the default on new seeds/envs (decides): static "
        f"{_kind('gain_new', 'static')}; dynamic {_kind('gain_new', 'dynamic')}"
    )
    lines.append(
        "(3) share of the tuning gain kept (not used: explodes near 0): static "
        f"{_kind('survival', 'static')}; dynamic {_kind('survival', 'dynamic')}"
    )
    c = study["divergences"]["counts"]
    tuned = sum(v["broke"] for k, v in c.items() if "/default" not in k)
    default = sum(v["broke"] for k, v in c.items() if "/default" in k)
    lines.append(
        f"(5) members that broke the simulator: tuned runs {tuned}, default runs {default}"
    )
    return lines


def _compiles(study: dict) -> str:
    c = study.get("compile")
    if not c:
        return "compile time not recorded"
    share = c["seconds"] / study["wall_seconds"] if study["wall_seconds"] > 0 else math.nan
    return f"{c['compiled']} programs compiled in {c['seconds']:.0f} s ({share:.0%} of wall)"


def write_report(study: dict, path: str) -> None:
    cfg, figs = study["config"], study["figures"]
    out = [
        "# HPO for model-based RL: study report",
        "",
        f"Scale `{cfg['scale']}`: envs {', '.join(cfg['envs'])}; tuners {', '.join(cfg['tuners'])};"
        f" seeds {list(cfg['seeds'])}; transfer seeds {list(cfg['transfer_seeds'])}; transfer "
        f"envs {list(cfg['transfer_envs']) or 'none'}; preset {cfg['preset']}, space "
        f"{cfg['space']}, trial length {cfg['trial_length'] or 'preset'}; slots per run "
        f"{study['populations']}; Hyperband eta {cfg['eta']} ({study['hyperband_member_trials']}"
        f" member-trials). Wall {study['wall_seconds']:.0f} s in this invocation (the runs'"
        f" own wall times, over every invocation, sum to {study['runs_wall_seconds']:.0f} s);"
        f" {_compiles(study)} in this invocation.",
        "",
        "## The paper's findings, one by one",
        "",
        "| finding | env | the paper | measured here | verdict | why |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['finding']} | {r['env']} | {r['paper']} | {r['measured']} | "
            f"**{r['verdict']}** | {r['reason']} |"
            for r in study["verdicts"]
        ],
        "",
        "Final return = mean return of the last 3 trials. 'best' = the tuner's incumbent "
        "(static: best configuration at the full budget; dynamic: best final member), "
        "selected on the seed it is reported for (optimistic); the transfer section re-runs it "
        "on new seeds. Intervals: percentile bootstrap of the mean "
        f"({cfg['confidence']:.0%}, {cfg['resamples']} resamples, scipy.stats.bootstrap).",
        "",
        "## Findings at this scale",
        "",
        *[f"- {line}" for line in findings(study)],
        "",
        "## Learning curves of the best member",
        "",
        f"![learning curves]({figs['learning_curves']})",
        "",
        "## Final return per tuner",
        "",
        "| env | tuner | best final return, mean [CI] | per seed | member-trials |",
        "|---|---|---|---|---|",
    ]
    for env, res in study["envs"].items():
        for tuner, row in res["tuners"].items():
            per_seed = ", ".join(_f(v) for v in row["best_final_return"])
            out.append(
                f"| {env} | {tuner} | {_ci(row['best_final_return_ci'])} | {per_seed} | "
                f"{row['member_trials']} |"
            )
            if tuner == "default":
                per = ", ".join(_f(v) for v in row["member_mean_final_return"])
                out.append(
                    f"| {env} | default (member mean) | "
                    f"{_ci(row['member_mean_final_return_ci'])} | {per} | |"
                )
    out += [
        "",
        f"![final returns]({figs['final_returns']})",
        "",
        "## Static vs dynamic",
        "",
        "| env | seed | best static (tuner) | best dynamic (tuner) |",
        "|---|---|---|---|",
    ]
    for env, res in study["envs"].items():
        sd = res["static_vs_dynamic"]
        for s, d in zip(sd["static"], sd["dynamic"], strict=True):
            out.append(
                f"| {env} | {s['seed']} | {_f(s['final_return'])} ({s['tuner']}) | "
                f"{_f(d['final_return'])} ({d['tuner']}) |"
            )
    out += [
        "",
        f"![static vs dynamic]({figs['static_vs_dynamic']})",
        "",
        "## Rank correlation across budgets (Spearman, scipy.stats.spearmanr)",
        "",
        "Configurations of random search / Hyperband (pooled over seeds); fitness after "
        "b trials = mean return of trials b-2..b of that configuration.",
        "",
        "| env | source | budgets | cor | p | n |",
        "|---|---|---|---|---|---|",
    ]
    for env, res in study["envs"].items():
        for src, sp in res["spearman"].items():
            for p in sp["pairs"]:
                out.append(
                    f"| {env} | {src} | {p['budget_low']} vs {p['budget_high']} | "
                    f"{_f(p['cor'], 3)} | {_f(p['p'], 3)} | {p['n']} |"
                )
    if figs["spearman"]:
        out += ["", f"![spearman]({figs['spearman']})"]
    out += [
        "",
        "## Transfer to new seeds and envs",
        "",
        "| from | to | tuner | tuned | default (source) | replay on new seeds [CI] | "
        "default on new seeds [CI] | gain tuned | gain new | surviving |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in study["transfer"]:
        out.append(
            f"| {r['source_env']} | {r['env']} | {r['tuner']} | "
            f"{_f(r['tuned_final_return'])} | {_f(r['default_source'])} | "
            f"{_ci(r['replay'])} | {_ci(r['default_new'])} | {_f(r['gain_tuned'])} | "
            f"{_f(r['gain_new'])} | {_f(r['survival'], 2)} |"
        )
    if figs["transfer"]:
        out += ["", f"![transfer]({figs['transfer']})"]
    out += ["", "## Hyperparameter schedules of the best dynamic members", ""]
    out += [f"- {k}: ![{k}]({v})" for k, v in figs["schedules"].items()]
    d = study["divergences"]
    out += [
        "",
        "## Divergences (the simulator broke)",
        "",
        "| runs | members | members that broke it | diverged member-trials |",
        "|---|---|---|---|",
    ]
    for key, c in sorted(d["counts"].items()):
        out.append(
            f"| {key} ({c['runs']} runs) | {c['members']} | {c['broke']} | {c['diverged_trials']} |"
        )
    if d["rows"]:
        out += ["", "| env | tuner | seed | member | trial |", "|---|---|---|---|---|"]
        out += [
            f"| {r['env']} | {r['role']}/{r['tuner']} | {r['seed']} | {r['member']} | "
            f"{r['trial']} |"
            for r in d["rows"][:100]
        ]
    out += ["", *study_videos.video_section(study.get("videos"))]
    with open(path, "w") as f:
        f.write("\n".join(out))


def write_study(
    manifest: list[dict],
    settings: dict[str, Any],
    wall_seconds: float,
    videos: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Analyses the study's runs into OUT/study.json, OUT/report.md and PNGs.

    Args:
      manifest: `jaxmbrl.experiments.study.run_study`'s list of run directories.
      settings: `jaxmbrl.experiments.study.study_settings(config)`.
      wall_seconds: the runs' wall time, for the report.
      videos: also render GIFs of the best, worst and default member per env into
        OUT/videos (`study_videos`; needs MUJOCO_GL chosen before mujoco was imported).
      log: where the video step reports progress.

    Returns:
      The study dict as written to study.json.
    """
    out_dir = settings["config"]["out"]
    for e in manifest:  # each run directory's own returns.png / schedules.png
        plots.plot_run(os.path.join(e["dir"], "members.jsonl"), e["dir"])
    study = analysis.analyse(manifest, settings)
    for key in ("config", "populations", "hyperband_member_trials"):
        study[key] = settings[key]
    study["compile"] = settings.get("compile")
    study["verdicts"] = study_verdicts.verdict_table(
        study, settings["confidence"], settings["resamples"], root=out_dir
    )
    study["figures"] = study_plots.plot_study(study, manifest, out_dir)
    study["videos"] = study_videos.make_videos(study, out_dir, log) if videos else []
    study_videos.link_diverged_frames(study["verdicts"], study["videos"])
    study["wall_seconds"] = wall_seconds
    study["runs_wall_seconds"] = sum(_run_wall(e["dir"]) for e in manifest)
    study["findings"] = findings(study)
    with open(os.path.join(out_dir, "study.json"), "w") as f:
        json.dump(_json_safe(study), f, indent=1, allow_nan=False)
    write_report(study, os.path.join(out_dir, "report.md"))
    return study


def _run_wall(run_dir: str) -> float:
    """A run's wall seconds as its summary.json records them (0 without one)."""
    try:
        with open(os.path.join(run_dir, "summary.json")) as f:
            return float(json.load(f).get("wall_seconds", 0.0))
    except (OSError, ValueError):
        return 0.0


def _json_safe(value: Any) -> Any:
    """Nested value with NaN/inf as None and numpy values as Python ones."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
