"""Regression guard: one PETS planning step of two code versions, timed alternately in one run.

PETS (Chua et al., NeurIPS 2018) as tuned by Zhang et al. (AISTATS 2021) spends a study's
CPU budget in the planner, so a planner change is judged against another version of the
code on the same host at the same time. On a shared host rates move by tens of percent from
minute to minute; two runs one after the other cannot tell a 5% change. Here each version
runs in its own long-lived process (`compare_worker.py`, started in the root of that
version's source tree, so it imports that version's `jaxmbrl` with the same Python
environment), compiles once, and then the two are called in alternation, ABBA order, for
`rounds` rounds. Each round gives a ratio of times (other / this: > 1 means this tree is
faster); the result is the median ratio and its spread (min, max) over rounds, beside each
version's best transitions/s. CPU seconds are reported too: on a loaded host they move less.

The other version is exported from git (`git archive REV`, no worktree registered) into a
cache directory keyed by its commit; the tree under test is the working tree itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

_WORKER = os.path.join(os.path.dirname(__file__), "compare_worker.py")


def repo_root(path: str | None = None) -> str:
    """The root of the source tree holding this package (a git checkout)."""
    here = path or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        ["git", "-C", here, "rev-parse", "--show-toplevel"], capture_output=True, text=True
    )
    if out.returncode:
        raise ValueError(f"{here} is not inside a git checkout: --compare needs one")
    return out.stdout.strip()


def resolve_rev(rev: str, root: str | None = None) -> str:
    """Full commit id of `rev`; ValueError (one line) if git does not know it. Compiles nothing."""
    root = root or repo_root()
    if not rev or rev.startswith("-"):
        raise ValueError(f"compare={rev!r} is not a git revision")
    out = subprocess.run(
        ["git", "-C", root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise ValueError(
            f"compare={rev!r} is not a commit of {root} (valid: a branch, tag or commit id)"
        )
    return out.stdout.strip()


def export_tree(commit: str, root: str | None = None, cache: str | None = None) -> str:
    """Source tree of `commit` (git archive, extracted once into a per-commit directory)."""
    root = root or repo_root()
    cache = cache or os.path.join(tempfile.gettempdir(), "jaxmbrl-compare")
    tree = os.path.join(cache, commit)
    if os.path.isfile(os.path.join(tree, ".complete")):
        return tree
    os.makedirs(tree, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", root, "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", tree], stdin=archive.stdout, check=True)
    if archive.wait():
        raise RuntimeError(f"git archive {commit} failed")
    open(os.path.join(tree, ".complete"), "w").close()
    return tree


class _Worker:
    """A running `compare_worker` in `tree`."""

    def __init__(self, tree: str, args: list[str]):
        with open(_WORKER) as f:
            source = f.read()
        env = dict(os.environ, PYTHONPATH=tree)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", source, *args],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith("COMPARE "):
                return json.loads(line[len("COMPARE ") :])
        raise RuntimeError(f"compare worker exited with status {self.proc.wait()}")

    def time(self) -> dict[str, Any]:
        self.proc.stdin.write("time\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait()


def summarize(this: list[dict], other: list[dict], transitions: tuple[float, float]) -> dict:
    """Rates and time ratios (other / this, per round) of the alternated calls."""
    out: dict[str, Any] = {}
    for key in ("seconds", "cpu_seconds"):
        t_this = np.array([c[key] for c in this])
        t_other = np.array([c[key] for c in other])
        ratios = t_other / t_this
        out[key] = dict(
            this_best=float(t_this.min()),
            other_best=float(t_other.min()),
            ratio_median=float(np.median(ratios)),
            ratio_min=float(ratios.min()),
            ratio_max=float(ratios.max()),
            ratio_of_best=float(t_other.min() / t_this.min()),
            ratios=ratios.tolist(),
        )
    # Cores busy during the fastest call (CPU s / wall s): on an idle host, how well the
    # version uses the intra-op threads; on a loaded one, the share of the host it got.
    for name, calls in (("this", this), ("other", other)):
        best = min(calls, key=lambda c: c["seconds"])
        out[f"{name}_cores"] = best["cpu_seconds"] / best["seconds"]
    out["this_transitions_per_second"] = transitions[0] / out["seconds"]["this_best"]
    out["other_transitions_per_second"] = transitions[1] / out["seconds"]["other_best"]
    return out


def run(
    rev: str,
    *,
    env: str,
    preset: str,
    steps: int,
    population: int,
    seed: int = 0,
    rounds: int = 3,
    cache_dir: str = "",
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict[str, Any]:
    """Times one planning step of this tree and of `rev` alternately (module docstring).

    Args:
      rev: the other version (any git revision; resolved before anything compiles).
      env, preset, steps, population, seed: what each version builds (`population` members
        one at a time, each one planning step of the study's default hyperparameters).
      rounds: alternations (each: this, other, other, this -- ABBA -- i.e. 2 calls each).
      cache_dir: persistent compilation cache for both workers ('' for none).
      log: progress lines.

    Returns:
      dict with 'rev', 'commit', 'this' and 'other' (tree, worker info, calls) and 'summary'
      (`summarize`: best rates, median ratio other/this and its min/max over rounds).
    """
    root = repo_root()
    commit = resolve_rev(rev, root)
    other_tree = export_tree(commit, root)
    args = [env, preset, str(steps), str(population), str(seed), cache_dir]
    workers = {"this": _Worker(root, args), "other": _Worker(other_tree, args)}
    try:
        info = {name: w.read() for name, w in workers.items()}
        for name, i in info.items():
            log(f"{name}: {i['jaxmbrl']} compiled in {i['compile_seconds']:.1f} s")
        calls: dict[str, list[dict]] = {"this": [], "other": []}
        for r in range(rounds):
            first, second = ("this", "other") if r % 2 == 0 else ("other", "this")
            order = (first, second, second, first)
            got: dict[str, list[dict]] = {"this": [], "other": []}
            for name in order:
                got[name].append(workers[name].time())
            for name in calls:  # a round's time per version: the faster of its two calls
                calls[name].append(min(got[name], key=lambda c: c["seconds"]))
            ratio = calls["other"][-1]["seconds"] / calls["this"][-1]["seconds"]
            log(f"round {r + 1}/{rounds}: time ratio other/this {ratio:.3f}")
    finally:
        for w in workers.values():
            w.close()
    transitions = (info["this"]["transitions"], info["other"]["transitions"])
    return dict(
        rev=rev,
        commit=commit,
        this=dict(tree=root, **info["this"], calls=calls["this"]),
        other=dict(tree=other_tree, **info["other"], calls=calls["other"]),
        summary=summarize(calls["this"], calls["other"], transitions),
    )


def lines(result: dict) -> list[str]:
    """What the binary prints: each version's transitions/s, the ratio and its spread."""
    s = result["summary"]
    wall, cpu = s["seconds"], s["cpu_seconds"]
    short = result["commit"][:7]
    return [
        f"this tree: {s['this_transitions_per_second']:.0f} transitions/s (best call "
        f"{wall['this_best']:.3f} s, {cpu['this_best']:.3f} CPU s best, "
        f"{s['this_cores']:.2f} cores busy)",
        f"{result['rev']} ({short}): {s['other_transitions_per_second']:.0f} transitions/s "
        f"(best call {wall['other_best']:.3f} s, {cpu['other_best']:.3f} CPU s best, "
        f"{s['other_cores']:.2f} cores busy)",
        f"time ratio {short}/this over {len(wall['ratios'])} rounds: median "
        f"{wall['ratio_median']:.3f} [{wall['ratio_min']:.3f}, {wall['ratio_max']:.3f}], "
        f"best/best {wall['ratio_of_best']:.3f}; CPU seconds: median {cpu['ratio_median']:.3f} "
        f"[{cpu['ratio_min']:.3f}, {cpu['ratio_max']:.3f}]  (> 1: this tree is faster)",
    ]
