"""Run directories: every binary writes into one `--out` directory that holds one run.

A directory is checked before anything compiles: it must be a writable directory (not a
file), and one that already holds a run with other settings is refused, so two runs never
mix their records. Records are appended line by line and fsynced, so a killed run loses
nothing that its last checkpoint counts (see `experiments.run`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from typing import Any

SETTINGS_FILE = "config.json"


def prepare_out_dir(out_dir: str) -> None:
    """Creates `out_dir` and checks that files can be written there (ValueError if not)."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out={out_dir} is a file; it must be a directory")
    try:
        os.makedirs(out_dir, exist_ok=True)
        # One probe per process: the processes of a multi-host run share the directory.
        probe = os.path.join(out_dir, f".write_test.{socket.gethostname()}.{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"--out={out_dir} is not a writable directory ({error.strerror})"
        ) from None


def saved_settings(out_dir: str) -> dict[str, Any] | None:
    """The settings of the run held in `out_dir`, or None if it holds none."""
    path = os.path.join(out_dir, SETTINGS_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"--out={out_dir}: unreadable {SETTINGS_FILE} ({error})") from None


def check_settings(
    out_dir: str,
    settings: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    ignore: Iterable[str] = (),
) -> None:
    """Claims `out_dir` for a run with `settings`; refuses one that holds other settings.

    Args:
      out_dir: the run directory (already prepared).
      settings: JSON-able settings of this run (e.g. `dataclasses.asdict(config)`).
      defaults: value of a setting that a saved run predates (newer settings count as it).
      ignore: settings that may differ between a run and its resumption.

    Raises:
      ValueError: one line naming the first differing setting.
    """
    saved = saved_settings(out_dir)
    settings = json.loads(json.dumps(dict(settings)))  # tuples -> lists, as saved
    if saved is None:
        with open(os.path.join(out_dir, SETTINGS_FILE), "w") as f:
            json.dump(settings, f, indent=2)
        return
    defaults = json.loads(json.dumps(dict(defaults or {})))
    skip = set(ignore)
    for name in sorted(settings):
        old = saved.get(name, defaults.get(name))
        if name not in skip and old != settings[name]:
            raise ValueError(
                f"--out={out_dir} holds a run with {name}={old!r}, not {settings[name]!r}: "
                "use another --out or the same settings to resume"
            )


def append_jsonl(path: str, rows: Iterable[dict]) -> None:
    """Appends rows as JSON lines and fsyncs them (they must survive a kill)."""
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_lines(path: str, lines: int) -> None:
    """Keeps the first `lines` lines of `path` (those written before the checkpoint)."""
    if not os.path.exists(path):
        open(path, "w").close()
        return
    with open(path) as f:
        kept = f.readlines()[:lines]
    with open(path, "w") as f:
        f.writelines(kept)
