"""Recorded tuner schedules: every decision of a run, as `schedule.npz` (and JSON).

A schedule is a `tuners.Decision` whose leaves carry a leading step axis [T + 1, N, ...]
(the first decision and one per update), so a dynamic schedule found by PBT (Zhang et al.,
AISTATS 2021: "dynamic schedules win on final return") can be replayed on another seed or
env with `tuners.make_schedule_replay`.
"""

from __future__ import annotations

import numpy as np

from jaxmbrl import tuners
from jaxmbrl.experiments import faults

SCHEDULE_FIELDS = tuners.Decision._fields


def load_schedule(path: str) -> tuners.Decision:
    """A recorded schedule (`schedule.npz` of a run): Decision with leaves [T + 1, N, ...].

    Raises:
      ValueError: one line naming the file and what is wrong with it (unreadable, missing
        fields, inconsistent shapes, non-finite or out-of-range values).
    """
    try:
        with np.load(path) as data:
            if not hasattr(data, "files"):
                raise ValueError("a single array, not an .npz archive")
            missing = [k for k in SCHEDULE_FIELDS if k not in data.files]
            if missing:
                raise ValueError(
                    f"missing fields {', '.join(missing)}; a schedule has "
                    f"{', '.join(SCHEDULE_FIELDS)}"
                )
            schedule = tuners.Decision(**{k: np.asarray(data[k]) for k in SCHEDULE_FIELDS})
        _check_schedule(schedule)
    except (OSError, EOFError, ValueError) as error:
        raise ValueError(f"schedule={path!r} is not a valid schedule.npz ({error})") from None
    return schedule


def _check_schedule(s: tuners.Decision) -> None:
    """Shapes [T + 1, N] (hparams [T + 1, N, D]), kinds and ranges of a loaded schedule."""
    if s.hparams.ndim != 3 or s.hparams.shape[0] < 1 or s.hparams.shape[1] < 1:
        raise ValueError(f"hparams has shape {s.hparams.shape}, not [steps, members, dims]")
    steps_members = s.hparams.shape[:2]
    for name in ("source", "restart", "changed", "budget"):
        shape = getattr(s, name).shape
        if shape != steps_members:
            raise ValueError(f"{name} has shape {shape}, hparams says {steps_members}")
    for name, kinds in (("hparams", "fiub"), ("source", "iu"), ("budget", "iu")):
        if getattr(s, name).dtype.kind not in kinds:
            raise ValueError(f"{name} has dtype {getattr(s, name).dtype}")
    for name in ("restart", "changed"):
        if getattr(s, name).dtype.kind not in "biu":
            raise ValueError(f"{name} has dtype {getattr(s, name).dtype}")
    if not np.isfinite(s.hparams).all():
        raise ValueError("hparams holds NaN or infinite values")
    if (s.hparams < 0).any() or (s.hparams > 1).any():
        raise ValueError("hparams lie outside the unit cube [0, 1]")
    if (s.source < 0).any() or (s.budget < 0).any():
        raise ValueError("source and budget must be >= 0")


def save_schedule(path: str, decisions: list[dict]) -> None:
    """Writes decisions (dicts of Decision fields, one per step) as one stacked `.npz`."""
    arrays = {k: np.stack([np.asarray(d[k]) for d in decisions]) for k in SCHEDULE_FIELDS}
    faults.write_atomic(path, lambda f: np.savez(f, **arrays), mode="wb")


def decision_record(decision: tuners.Decision) -> dict[str, list]:
    """A decision as JSON-able lists (what a checkpoint's metadata keeps)."""
    return {k: np.asarray(v).tolist() for k, v in decision._asdict().items()}
