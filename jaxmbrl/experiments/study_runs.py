"""Reading a tuning-run directory back (lineages, trajectories, fitness, the best member) and
writing its best result as a replayable schedule.

For the study of Zhang et al. (AISTATS 2021). A run directory holds `members.jsonl` (one
line per member per trial: step, trial, trial_return, diverged, hparams, parent),
`schedule.npz` (every tuner decision, leading axis [T + 1, N]: entry t governs the trials of
tuner step t) and `config.json`. Fitness is the population's: the mean return of the last 3
trials since the (re)start of what the slot holds, -inf once a trial diverged or was
non-finite (`population.fitness`); a copy (PBT) carries the parent's returns along, so
fitness is computed along the lineage.

The study re-ran the best configurations and PBT's learned schedules on new seeds (Sec. 5).
Here each becomes a `schedule.npz` that `--tuner=replay` runs: every member starts fresh and
follows the same hyperparameters (held for a static configuration, step by step for a
dynamic schedule), without copies, so the N members are N independent samples of the result.
For another env the values (not the unit coordinates) are carried over, clipped to its ranges.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections import defaultdict
from typing import Any

import numpy as np

from jaxmbrl import tuners
from jaxmbrl.experiments import rundir
from jaxmbrl.experiments.schedules import load_schedule
from jaxmbrl.tuners.base import Decision

FITNESS_WINDOW = 3
STATIC_TUNERS = ("random_search", "hyperband", "bohb")
DYNAMIC_TUNERS = ("pbt", "pbt_bt", "pb2")


def load_run(run_dir: str) -> dict[str, Any]:
    """config, rows (members.jsonl) and schedule of a finished or partial run."""
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    rows = []
    path = os.path.join(run_dir, "members.jsonl")
    if os.path.exists(path):  # a line cut by a kill is dropped with a warning
        rows = rundir.read_jsonl(path, log=lambda line: print(line, file=sys.stderr))
    sched_path = os.path.join(run_dir, "schedule.npz")
    schedule = load_schedule(sched_path) if os.path.exists(sched_path) else None
    return dict(dir=run_dir, config=config, rows=rows, schedule=schedule)


def window_fitness(returns: list[float], failed: list[bool]) -> list[float]:
    """Fitness after each trial of one trajectory: mean of the last 3 returns, -inf once failed."""
    out, broken = [], False
    for k in range(len(returns)):
        broken = broken or failed[k] or not math.isfinite(returns[k])
        window = returns[max(0, k + 1 - FITNESS_WINDOW) : k + 1]
        out.append(-math.inf if broken else float(np.mean(window)))
    return out


def lineage_slots(schedule: Decision, member: int) -> tuple[np.ndarray, int | None]:
    """The slot that held `member`'s ancestor at every step (-1 before the lineage began).

    Like `tuners.lineage`, but a PBT-BT restore from the archive (source >= N) ends the walk
    instead of raising: the archived checkpoint's history is not in the schedule. Returns
    (slots [T + 1], the step of that restore or None).
    """
    src, restart = schedule.source, schedule.restart
    steps, n = src.shape
    slots = np.full(steps, -1)
    m = member
    for t in range(steps - 1, -1, -1):
        slots[t] = m
        if restart[t, m]:
            return slots, None
        if src[t, m] >= n:
            return slots, t
        m = int(src[t, m])
    return slots, None


def _rows_by_slot_step(rows: list[dict]) -> dict[tuple[int, int], list[dict]]:
    out: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for r in rows:
        out[(r["member"], r["step"])].append(r)
    for v in out.values():
        v.sort(key=lambda r: r["trial"])
    return out


def member_lineages(run: dict) -> list[dict]:
    """Per final slot: its lineage's trials (returns, diverged, hparams, slot) and fitness."""
    sched, rows = run["schedule"], run["rows"]
    if sched is None or not rows:
        return []
    by = _rows_by_slot_step(rows)
    last_step = max(r["step"] for r in rows)
    # Walk back from the last step that ran trials: the decision after the final update
    # (entry T) governs nothing, and a copy made there is not part of what was measured.
    sched = Decision(*(np.asarray(x)[: last_step + 1] for x in sched))
    out = []
    for m in range(sched.source.shape[1]):
        slots, restored = lineage_slots(sched, m)
        trials = []
        for t in range(last_step + 1):
            if slots[t] >= 0:
                trials.extend(by.get((int(slots[t]), t), []))
        returns = [r["trial_return"] for r in trials]
        fitness = window_fitness(returns, [r["diverged"] for r in trials])
        out.append(
            dict(
                member=m,
                slots=slots.tolist(),
                restored_at=restored,
                trial=[r["trial"] for r in trials],
                returns=returns,
                hparams=[r["hparams"] for r in trials],
                fitness=fitness[-1] if fitness else -math.inf,
                final_return=_final_return(returns),
            )
        )
    return out


def _final_return(returns: list[float]) -> float:
    tail = [x for x in returns[-FITNESS_WINDOW:] if math.isfinite(x)]
    return float(np.mean(tail)) if tail else math.nan


def trajectory_table(run: dict) -> list[dict]:
    """Each configuration trained from a fresh start in one slot, with per-trial returns,
    fitness and divergence flags (static tuners).

    A trajectory starts where the schedule restarts a slot and runs over that slot's trials
    until its next restart (Hyperband's promotions continue in the slot). One per
    configuration: one that Hyperband retrained from scratch keeps its longest trajectory.
    """
    sched, rows = run["schedule"], run["rows"]
    if sched is None:
        return []
    out: list[dict] = []
    current: dict[int, dict] = {}
    for r in sorted(rows, key=lambda r: (r["step"], r["member"], r["trial"])):
        m, t = r["member"], r["step"]
        if m not in current or (bool(sched.restart[t, m]) and current[m]["start_step"] != t):
            current[m] = dict(slot=m, start_step=t, unit=sched.hparams[t, m].tolist(), rows=[])
            out.append(current[m])
        current[m]["rows"].append(r)
    best: dict[tuple, dict] = {}
    for tr in out:
        rs = tr.pop("rows")
        tr["returns"] = [r["trial_return"] for r in rs]
        tr["diverged"] = [bool(r["diverged"]) for r in rs]
        tr["hparams"] = rs[0]["hparams"]
        tr["fitness"] = window_fitness(tr["returns"], tr["diverged"])
        key = tuple(np.round(tr["unit"], 6))
        if key not in best or len(tr["returns"]) > len(best[key]["returns"]):
            best[key] = tr
    return list(best.values())


def best_of_run(run: dict, tuner: str, max_budget: int) -> dict | None:
    """The run's result as the tuner reports it.

    Static tuners: the incumbent configuration, the trajectory with the best fitness among
    those trained for the full `max_budget` trials (Hyperband's incumbent; for random search
    every member). Dynamic tuners and the default: the final slot with the best final fitness
    along its lineage. Returns None if the run has no records.
    """
    if tuner in STATIC_TUNERS:
        trs = trajectory_table(run)
        if not trs:
            return None
        # The result at the full budget: after exactly `max_budget` trials of training (a
        # trajectory that trained longer is read at that budget).
        budget = min(max(len(t["returns"]) for t in trs), max_budget)
        full = [t for t in trs if len(t["returns"]) >= budget]
        tr = max(full, key=lambda t: (t["fitness"][budget - 1], -t["slot"]))
        returns = tr["returns"][:budget]
        return dict(
            kind="static",
            member=tr["slot"],
            fitness=tr["fitness"][budget - 1],
            final_return=_final_return(returns),
            returns=returns,
            trial=list(range(1, budget + 1)),
            unit=tr["unit"],
            hparams=tr["hparams"],
            budget=budget,
            trained=len(tr["returns"]),
        )
    lins = member_lineages(run)
    if not lins:
        return None
    lin = max(lins, key=lambda x: (x["fitness"], -x["member"]))
    sched = run["schedule"]
    slots = lin["slots"]
    steps = len(slots)
    unit = np.full((steps, sched.hparams.shape[2]), np.nan, np.float32)
    budget = np.zeros(steps, np.int64)
    for t, s in enumerate(slots):
        if s >= 0:
            unit[t], budget[t] = sched.hparams[t, s], sched.budget[t, s]
    return dict(
        kind="dynamic",
        member=lin["member"],
        fitness=lin["fitness"],
        final_return=lin["final_return"],
        returns=lin["returns"],
        trial=lin["trial"],
        hparams=lin["hparams"],
        slots=slots,
        restored_at=lin["restored_at"],
        unit_schedule=unit.tolist(),
        budget_schedule=budget.tolist(),
    )


def member_final_returns(run: dict) -> list[float]:
    """Final return (mean of the last 3 trials along the lineage) of every final slot."""
    return [x["final_return"] for x in member_lineages(run)]


def mean_curve(run: dict) -> tuple[list[int], list[float]]:
    """Mean return over members per trial (the default configuration's learning curve)."""
    per_trial: dict[int, list[float]] = defaultdict(list)
    for r in run["rows"]:
        if math.isfinite(r["trial_return"]):
            per_trial[r["trial"]].append(r["trial_return"])
    trials = sorted(per_trial)
    return trials, [float(np.mean(per_trial[t])) for t in trials]


def save_schedule(stem: str, schedule: Decision) -> str:
    """Writes a replayable STEM.HASH.npz (+ .json beside it); returns the .npz path.

    The content hash in the name keeps a resumed study from replaying a changed schedule
    under an old run directory.
    """
    arrays = {k: np.asarray(v) for k, v in schedule._asdict().items()}
    digest = hashlib.sha1()
    for k in Decision._fields:
        digest.update(np.ascontiguousarray(arrays[k]).tobytes())
    path = f"{stem}.{digest.hexdigest()[:8]}.npz"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **arrays)
    with open(path[: -len(".npz")] + ".json", "w") as f:
        json.dump({k: v.tolist() for k, v in arrays.items()}, f)
    return path


def fixed_schedule(unit: np.ndarray, population: int, budget: np.ndarray | int) -> Decision:
    """Every member starts fresh and follows `unit` ([D] held, or [T + 1, D] per step)."""
    unit = np.asarray(unit, np.float32)
    unit = unit[None] if unit.ndim == 1 else unit
    sched = tuners.hparams_schedule(unit, population, np.asarray(budget))
    return Decision(*(np.asarray(x) for x in sched))


def reencode(unit: np.ndarray, source: tuners.SearchSpace, target: tuners.SearchSpace):
    """Unit hyperparameters of `source` as the same values (clipped) in `target`."""
    values = {k: np.asarray(v) for k, v in source.from_unit(np.asarray(unit, np.float32)).items()}
    return np.asarray(target.to_unit({k: values[k] for k in target.names}))


def best_schedule(
    best: dict,
    source: tuners.SearchSpace,
    target: tuners.SearchSpace,
    population: int,
    ready_interval: int,
) -> Decision:
    """The replayable schedule of `best` (`study_runs.best_of_run`) in `target`'s space."""
    if best["kind"] == "static":
        unit = np.asarray(best["unit"], np.float32)
        return fixed_schedule(reencode(unit, source, target), population, ready_interval)
    unit = np.asarray(best["unit_schedule"], np.float32)
    budget = np.asarray(best["budget_schedule"])
    first = int(np.flatnonzero(~np.isnan(unit[:, 0]))[0])
    unit[:first] = unit[first]  # a PBT-BT lineage that starts at an archive restore
    budget = np.where(budget > 0, budget, ready_interval)
    return fixed_schedule(reencode(unit, source, target), population, budget)
