"""A tuning run's best result as a replayable schedule (Zhang et al., AISTATS 2021, Sec. 5).

The study re-ran the best configurations and PBT's learned schedules on new seeds. Here each
becomes a `schedule.npz` that `--tuner=replay` runs: every member starts fresh and follows
the same hyperparameters (held for a static configuration, step by step for a dynamic
schedule), without copies, so the N members are N independent samples of the result. For
another env the values (not the unit coordinates) are carried over, clipped to its ranges.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from jaxmbrl import tuners
from jaxmbrl.tuners.base import Decision


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
