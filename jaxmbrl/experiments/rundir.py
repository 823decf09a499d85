"""Run directories: every binary writes into one `--out` directory that holds one run.

A directory is checked before anything compiles: it must be a writable directory (not a
file), and one that already holds a run with other settings is refused, so two runs never
mix their records. Records are appended line by line and fsynced, so a killed run loses
nothing that its last checkpoint counts (see `experiments.run`); on resume a cut-off last
line is dropped with a warning and lines the checkpoint counts but the file lacks are
rebuilt from the checkpoint (`restore_lines`). A failing write raises `faults.WriteError`.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jaxmbrl.experiments import faults

SETTINGS_FILE = "config.json"
# The layout of a run directory (records, checkpoint metadata); a directory written by a
# version with another format is refused. Directories without the field are format 1.
RUN_FORMAT = 1


def prepare_out_dir(out_dir: str, flag: str = "out") -> None:
    """Creates `out_dir` and checks that files can be written there (ValueError if not,
    naming it as `--flag=out_dir`)."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--{flag}={out_dir} is a file; it must be a directory")
    try:
        os.makedirs(out_dir, exist_ok=True)
        # One probe per process: the processes of a multi-host run share the directory.
        probe = os.path.join(out_dir, f".write_test.{socket.gethostname()}.{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"--{flag}={out_dir} is not a writable directory ({error.strerror})"
        ) from None


def saved_settings(out_dir: str) -> dict[str, Any] | None:
    """The settings of the run held in `out_dir`, or None if it holds none."""
    path = os.path.join(out_dir, SETTINGS_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"--out={out_dir}: unreadable {SETTINGS_FILE} ({error})") from None
    if not isinstance(saved, dict):
        raise ValueError(f"--out={out_dir}: {SETTINGS_FILE} is not a run's settings")
    version = saved.pop("run_format", 1)
    if version != RUN_FORMAT:
        raise ValueError(
            f"--out={out_dir} holds a run directory of format {version!r}, this version "
            f"reads format {RUN_FORMAT}: use another --out or the version that wrote it"
        )
    return saved


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
        content = dict(settings, run_format=RUN_FORMAT)
        write_json(os.path.join(out_dir, SETTINGS_FILE), content)
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


def write_json(path: str, value: Any) -> None:
    """Writes `path` whole or not at all (a half-written file is never left behind)."""
    faults.write_atomic(path, lambda f: json.dump(value, f, indent=2))


def append_jsonl(path: str, rows: Iterable[dict]) -> None:
    """Appends rows as JSON lines and fsyncs them (they must survive a kill)."""
    with faults.writing(path), open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _complete_lines(path: str) -> tuple[list[bytes], bool]:
    """The file's lines that are whole JSON values, and whether a cut-off tail followed."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty unless the last line was cut off
    good = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            return good, True
        good.append(line)
    return good, bool(tail.strip())


def read_jsonl(path: str, log: Callable[[str], None] = print) -> list[dict]:
    """The records of a JSONL file; a cut-off last line is dropped with a warning."""
    lines, cut = _complete_lines(path)
    if cut:
        log(f"warning: {path}: dropped a cut-off line after record {len(lines)}")
    return [json.loads(line) for line in lines if line.strip()]


def restore_lines(
    path: str, lines: int, rows: list[dict] | None, log: Callable[[str], None] = print
) -> None:
    """Makes `path` hold exactly the `lines` records a checkpoint counts.

    Lines written after the checkpoint are dropped (they are recomputed); a cut-off last
    line is dropped with a warning; lines the checkpoint counts that the file lacks are
    rebuilt from `rows` (the checkpoint's copy of every record).
    """
    if not os.path.exists(path):
        good, cut = [], False
    else:
        good, cut = _complete_lines(path)
    if cut:
        log(f"warning: {path}: dropped a cut-off line after record {len(good)}")
    kept = good[:lines]
    missing = lines - len(kept)
    if missing and (rows is None or len(rows) < lines):
        raise ValueError(
            f"{path} holds {len(kept)} of the {lines} records its checkpoint counts, and the "
            "checkpoint has no copy of them: restore the file or use another --out"
        )
    if missing:
        log(f"warning: {path}: rebuilt {missing} records from the checkpoint")
    size = sum(len(line) + 1 for line in kept)
    with faults.writing(path):
        if not os.path.exists(path):
            open(path, "w").close()
        # Truncating in place needs no free space (a rewrite on a full disk would lose lines).
        os.truncate(path, size)
    if missing:
        append_jsonl(path, rows[len(kept) : lines])
