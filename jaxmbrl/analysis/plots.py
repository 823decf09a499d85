"""Plots of a tuning run: members' returns and hyperparameter schedules over trials."""

from __future__ import annotations

import json
import os
from collections import defaultdict

from matplotlib.figure import Figure


def load_members(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_run(members_path: str, out_dir: str) -> list[str]:
    """Writes returns.png and schedules.png from `members.jsonl`; returns their paths."""
    rows = load_members(members_path)
    if not rows:
        return []
    by_member: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_member[row["member"]].append(row)
    paths = []

    # Figures of their own (no pyplot state): safe in any process, any backend.
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for member, mrows in sorted(by_member.items()):
        ax.plot(
            [r["trial"] for r in mrows],
            [r["trial_return"] for r in mrows],
            lw=1,
            alpha=0.8,
            label=f"member {member}",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel("return")
    ax.set_title("returns per member")
    if len(by_member) <= 10:
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, "returns.png"))
    fig.savefig(paths[-1], dpi=100)

    names = [k for k, v in rows[0]["hparams"].items() if isinstance(v, (int, float))]
    if names:
        fig = Figure(figsize=(7, 1.8 * len(names)))
        axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)
        for ax, name in zip(axes[:, 0], names, strict=True):
            for _, mrows in sorted(by_member.items()):
                ax.step(
                    [r["trial"] for r in mrows],
                    [r["hparams"][name] for r in mrows],
                    where="post",
                    lw=1,
                    alpha=0.8,
                )
            ax.set_ylabel(name, fontsize=8)
        axes[-1, 0].set_xlabel("trial")
        fig.suptitle("hyperparameter schedules")
        fig.tight_layout()
        paths.append(os.path.join(out_dir, "schedules.png"))
        fig.savefig(paths[-1], dpi=100)
    return paths


def plot_trials(trials_path: str, out_dir: str) -> str | None:
    """Writes returns.png of one agent's run from its `trials.jsonl`; returns its path."""
    rows = load_members(trials_path)
    if not rows:
        return None
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot([r["trial"] for r in rows], [r["trial_return"] for r in rows], marker="o", lw=1)
    for r in rows:
        if r.get("diverged"):
            ax.axvline(r["trial"], color="red", lw=0.8, alpha=0.6)
    ax.set_xlabel("trial (the first acts at random)")
    ax.set_ylabel("return")
    ax.set_title(f"PETS on {rows[0].get('env', '?')}, seed {rows[0].get('seed', '?')}")
    fig.tight_layout()
    path = os.path.join(out_dir, "returns.png")
    fig.savefig(path, dpi=100)
    return path
