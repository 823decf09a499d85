"""Figures of the study (Zhang et al., AISTATS 2021) from `analysis.study.analyse`'s dict.

matplotlib.figure.Figure only (no pyplot global state). Also writes, per dynamic run, the
best member's lineage and hyperparameter schedule (best_schedule.png / .json) and the whole
recorded schedule as JSON beside its schedule.npz.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jaxmbrl.experiments import study_runs

COLORS = dict(
    random_search="C0", hyperband="C1", pbt="C2", pbt_bt="C3", pb2="C4", bohb="C5", default="k"
)


def _save(fig: Figure, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _band(curves: list[tuple[list[int], list[float]]]):
    """Median and interquartile range over seeds, aligned by trial number."""
    trials = sorted({t for tr, _ in curves for t in tr})
    table = np.full((len(curves), len(trials)), np.nan)
    index = {t: i for i, t in enumerate(trials)}
    for k, (tr, ys) in enumerate(curves):
        for t, y in zip(tr, ys, strict=True):
            table[k, index[t]] = y if y is not None and math.isfinite(y) else np.nan
    with np.errstate(all="ignore"), _quiet():
        return (
            trials,
            np.nanmedian(table, 0),
            np.nanpercentile(table, 25, 0),
            np.nanpercentile(table, 75, 0),
        )


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def learning_curves(study: dict, path: str) -> str:
    envs = list(study["envs"])
    fig = Figure(figsize=(6 * len(envs), 4))
    axes = np.atleast_1d(fig.subplots(1, len(envs)))
    for ax, env in zip(axes, envs, strict=True):
        for tuner, row in study["envs"][env]["tuners"].items():
            key = "mean_curves" if tuner == "default" else "best_curves"
            curves = [(c["trial"], c["returns"]) for c in row.get(key, []) if c["trial"]]
            if not curves:
                continue
            x, med, lo, hi = _band(curves)
            label = "default (member mean)" if tuner == "default" else f"{tuner} (best member)"
            ax.plot(x, med, color=COLORS.get(tuner), label=label)
            ax.fill_between(x, lo, hi, color=COLORS.get(tuner), alpha=0.2)
        ax.set(title=f"{env}: median and IQR over seeds", xlabel="trials trained", ylabel="return")
        ax.legend(fontsize=7)
    return _save(fig, path)


def final_returns(study: dict, path: str) -> str:
    envs = list(study["envs"])
    fig = Figure(figsize=(6 * len(envs), 4))
    axes = np.atleast_1d(fig.subplots(1, len(envs)))
    for ax, env in zip(axes, envs, strict=True):
        labels = []
        for tuner, row in study["envs"][env]["tuners"].items():
            items = [("best", row["best_final_return_ci"], row["best_final_return"])]
            if tuner == "default":
                items = [
                    ("mean", row["member_mean_final_return_ci"], row["member_mean_final_return"])
                ] + items
            for what, ci, values in items:
                x = len(labels)
                labels.append(tuner if tuner != "default" else f"default\n({what})")
                ys = [v for v in values if v is not None]
                ax.scatter([x] * len(ys), ys, color=COLORS.get(tuner), alpha=0.4, s=12)
                if ci["mean"] is not None:
                    lo = ci["mean"] - (ci["low"] if ci["low"] is not None else ci["mean"])
                    hi = (ci["high"] if ci["high"] is not None else ci["mean"]) - ci["mean"]
                    ax.errorbar(
                        [x],
                        [ci["mean"]],
                        yerr=[[lo], [hi]],
                        fmt="o",
                        color=COLORS.get(tuner),
                        capsize=4,
                    )
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set(title=f"{env}: final return, mean and bootstrap CI over seeds", ylabel="return")
    return _save(fig, path)


def spearman_grid(study: dict, path: str) -> str:
    cells = [
        (env, src, res) for env, e in study["envs"].items() for src, res in e["spearman"].items()
    ]
    if not cells:
        return ""
    fig = Figure(figsize=(4.5 * len(cells), 4))
    axes = np.atleast_1d(fig.subplots(1, len(cells)))
    for ax, (env, src, res) in zip(axes, cells, strict=True):
        b = res["budgets"]
        grid = np.full((len(b), len(b)), np.nan)
        for p in res["pairs"]:
            i, j = b.index(p["budget_low"]), b.index(p["budget_high"])
            if p["cor"] is not None:
                grid[i, j] = p["cor"]
            cor = "n/a" if p["cor"] is None else f"{p['cor']:.2f}"
            pv = "n/a" if p["p"] is None else f"{p['p']:.2g}"
            ax.text(j, i, f"{cor}\np={pv}\nn={p['n']}", ha="center", va="center", fontsize=7)
        im = ax.imshow(grid, vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_xticks(range(len(b)), b)
        ax.set_yticks(range(len(b)), b)
        ax.set(title=f"{env} / {src}: Spearman", xlabel="budget (trials)", ylabel="budget")
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def static_vs_dynamic(study: dict, path: str) -> str:
    envs = list(study["envs"])
    fig = Figure(figsize=(5 * len(envs), 4))
    axes = np.atleast_1d(fig.subplots(1, len(envs)))
    for ax, env in zip(axes, envs, strict=True):
        sd = study["envs"][env]["static_vs_dynamic"]
        for s, d in zip(sd["static"], sd["dynamic"], strict=True):
            ax.plot([0, 1], [s["final_return"], d["final_return"]], "o-", color="gray", alpha=0.6)
            ax.annotate(f"seed {s['seed']}", (1, d["final_return"]), fontsize=7)
        ax.set_xticks([0, 1], ["best static\n(RS / HB)", "best dynamic\n(PBT / PBT-BT)"])
        ax.set(xlim=(-0.5, 1.5), title=f"{env}: per seed", ylabel="final return")
    return _save(fig, path)


def transfer(study: dict, path: str) -> str:
    rows = study["transfer"]
    if not rows:
        return ""
    fig = Figure(figsize=(max(6, 1.4 * len(rows)), 4.2))
    ax = fig.subplots()
    x = np.arange(len(rows))
    gt = [r["gain_tuned"] if r["gain_tuned"] is not None else np.nan for r in rows]
    gn = [r["gain_new"] if r["gain_new"] is not None else np.nan for r in rows]
    ax.bar(x - 0.2, gt, 0.4, label="gain over default, tuning run")
    ax.bar(x + 0.2, gn, 0.4, label="gain over default, new seeds / env")
    ax.axhline(0, color="k", lw=0.8)
    # Three short lines: "source->target" on one line overlaps its neighbours' labels.
    labels = [f"{r['source_env']} ->\n{r['env']}\n{r['tuner']}" for r in rows]
    ax.set_xticks(x, labels, fontsize=7)
    ax.set(ylabel="return", title="transfer of the best result")
    ax.legend(fontsize=7)
    return _save(fig, path)


def best_schedule(run_dir: str, max_budget: int) -> list[str]:
    """best_schedule.png/.json (lineage and hyperparameters of the best final member) and
    schedule.json (the recorded schedule) in a dynamic run's directory."""
    run = study_runs.load_run(run_dir)
    if run["schedule"] is None:
        return []
    with open(os.path.join(run_dir, "schedule.json"), "w") as f:
        json.dump({k: np.asarray(v).tolist() for k, v in run["schedule"]._asdict().items()}, f)
    best = study_runs.best_of_run(run, "pbt", max_budget)
    if best is None:
        return []
    record = dict(
        member=best["member"],
        slots=best["slots"],
        restored_at=best["restored_at"],
        trial=best["trial"],
        returns=best["returns"],
        hparams=best["hparams"],
        unit_schedule=best["unit_schedule"],
        budget_schedule=best["budget_schedule"],
    )
    with open(os.path.join(run_dir, "best_schedule.json"), "w") as f:
        json.dump(record, f, default=lambda x: None)
    names = [k for k, v in best["hparams"][0].items() if isinstance(v, (int, float))]
    fig = Figure(figsize=(7, 1.6 * (len(names) + 2)))
    axes = fig.subplots(len(names) + 2, 1, sharex=True)
    axes[0].plot(best["trial"], best["returns"], color="C2")
    axes[0].set_ylabel("return", fontsize=8)
    slot_of_trial = {r["trial"]: r for r in run["rows"]}
    slots = [best["slots"][slot_of_trial[t]["step"]] for t in best["trial"]]
    axes[1].step(best["trial"], slots, where="post")
    axes[1].set_ylabel("slot", fontsize=8)
    for ax, name in zip(axes[2:], names, strict=True):
        ax.step(best["trial"], [h[name] for h in best["hparams"]], where="post")
        ax.set_ylabel(name, fontsize=8)
    axes[-1].set_xlabel("trial")
    fig.suptitle(f"best member {best['member']}: lineage and schedule")
    return [_save(fig, os.path.join(run_dir, "best_schedule.png"))]


def plot_study(study: dict, manifest: list[dict], out_dir: str) -> dict[str, Any]:
    """All figures; returns name -> path (relative to `out_dir`)."""
    paths = dict(
        learning_curves=learning_curves(study, os.path.join(out_dir, "learning_curves.png")),
        final_returns=final_returns(study, os.path.join(out_dir, "final_returns.png")),
        spearman=spearman_grid(study, os.path.join(out_dir, "spearman.png")),
        static_vs_dynamic=static_vs_dynamic(study, os.path.join(out_dir, "static_vs_dynamic.png")),
        transfer=transfer(study, os.path.join(out_dir, "transfer.png")),
    )
    schedules = {}
    for e in manifest:
        if e["role"] == "tune" and e["tuner"] in study_runs.DYNAMIC_TUNERS:
            trials = study["config"]["trials"] if "config" in study else 0
            for p in best_schedule(e["dir"], trials):
                schedules[f"{e['env']}/{e['tuner']}/seed{e['seed']}"] = p
    paths["schedules"] = schedules
    return {
        k: (
            os.path.relpath(v, out_dir)
            if isinstance(v, str) and v
            else {a: os.path.relpath(b, out_dir) for a, b in v.items()}
            if isinstance(v, dict)
            else v
        )
        for k, v in paths.items()
    }
