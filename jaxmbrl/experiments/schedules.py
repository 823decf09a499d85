"""Recorded tuner schedules: every decision of a run, as `schedule.npz` (and JSON).

A schedule is a `tuners.Decision` whose leaves carry a leading step axis [T + 1, N, ...]
(the first decision and one per update), so a dynamic schedule found by PBT (Zhang et al.,
AISTATS 2021: "dynamic schedules win on final return") can be replayed on another seed or
env with `tuners.make_schedule_replay`.
"""

from __future__ import annotations

import numpy as np

from jaxmbrl import tuners

SCHEDULE_FIELDS = tuners.Decision._fields


def load_schedule(path: str) -> tuners.Decision:
    """A recorded schedule (`schedule.npz` of a run): Decision with leaves [T + 1, N, ...]."""
    try:
        with np.load(path) as data:
            return tuners.Decision(**{k: data[k] for k in SCHEDULE_FIELDS})
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"schedule={path!r} is not a readable schedule.npz ({error})") from None


def save_schedule(path: str, decisions: list[dict]) -> None:
    """Writes decisions (dicts of Decision fields, one per step) as one stacked `.npz`."""
    np.savez(path, **{k: np.stack([np.asarray(d[k]) for d in decisions]) for k in SCHEDULE_FIELDS})


def decision_record(decision: tuners.Decision) -> dict[str, list]:
    """A decision as JSON-able lists (what a checkpoint's metadata keeps)."""
    return {k: np.asarray(v).tolist() for k, v in decision._asdict().items()}
