"""Faults a long tuning run meets (issue 21), injected for real: signals, a failing write, a
second process on one directory, a cut-off records file, bad user files.

One module-scoped reference run; every interrupted or damaged run is resumed and its
records compared to the reference bit for bit. Subprocesses only where a process is the
point (SIGTERM to the binary; a lock held by another live process).
"""

import errno
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest
import tiny

from benchmarks import _cli
from jaxmbrl import experiments
from jaxmbrl.experiments import faults, rundir

run_lib = importlib.import_module("jaxmbrl.experiments.run")  # the package exports run()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The suite's shared sizes (tests/tiny.py: its programs come from the session's cache), in
# 2 tuner steps of 2 trials: a signal can land between the trials of a step.
SMALL = dict(tiny.RUN, tuner="pbt", ready_interval=2)
FLAGS = [f"--{k}={v}" for k, v in SMALL.items()]


def _rows(out_dir):
    with open(os.path.join(out_dir, "members.jsonl")) as f:
        return [json.loads(line) for line in f]


def _run(out_dir, lines=None, **overrides):
    config = experiments.TuneConfig(**{**SMALL, **overrides})
    return experiments.run(config, str(out_dir), log=(lines if lines is not None else []).append)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    _run(out)
    return out


def _signal_during(monkeypatch, name, signum, call_number):
    """Sends `signum` to this process from inside the `call_number`-th call of run.`name`."""
    real, calls = getattr(run_lib if name == "_trial" else rundir, name), []

    def wrapped(*args):
        calls.append(1)
        if len(calls) == call_number:
            os.kill(os.getpid(), signum)
            if name == "_trial":
                time.sleep(2)  # a trial long enough to be in flight when the signal lands
        return real(*args)

    monkeypatch.setattr(run_lib if name == "_trial" else rundir, name, wrapped)


def test_sigint_abandons_the_trial_in_flight_and_resumes_bit_identically(
    reference, tmp_path, monkeypatch
):
    # The 4th trial is the 2nd of step 1; checkpoint_every=2 leaves step 1 unsaved until
    # the signal, so the stop itself must save it.
    _signal_during(monkeypatch, "_trial", signal.SIGINT, 4)
    with pytest.raises(faults.Interrupted) as stop:
        _run(tmp_path, checkpoint_every=2)
    assert stop.value.exit_status == 130
    assert "stopped by SIGINT" in stop.value.message
    assert "1 tuner steps (2 trials) done; step 1 trial 2/2 abandoned" in stop.value.message
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]
    assert not (tmp_path / "summary.json").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    monkeypatch.undo()
    lines = []
    _run(tmp_path, lines)
    assert "resumed from tuner step 1 (4 records)" in lines
    assert _rows(tmp_path) == _rows(reference)


def test_signal_during_the_records_write_waits_for_the_checkpoint(reference, tmp_path, monkeypatch):
    _signal_during(monkeypatch, "append_jsonl", signal.SIGTERM, 1)
    with pytest.raises(faults.Interrupted) as stop:
        _run(tmp_path)
    assert stop.value.exit_status == 143 and "abandoned" not in stop.value.message
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]
    assert _rows(tmp_path) == _rows(reference)[:4]


def test_binary_sigterm_exits_143_with_one_line_and_resumes(reference, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "benchmarks.tune", *FLAGS, f"--out={out}"]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    seen = []
    timer = threading.Timer(600, proc.kill)
    timer.start()
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("step   0"):  # step 1's trials or step 0's checkpoint are next
            proc.send_signal(signal.SIGTERM)
            break
    seen += proc.stderr.readlines()
    timer.cancel()
    assert proc.wait() == 143, "".join(seen)
    last = seen[-1]
    assert last.startswith("tune.py: stopped by SIGTERM"), "".join(seen)
    assert "resume: python -m benchmarks.tune" in last and f"--out={out}" in last
    assert not (out / "summary.json").exists()
    assert not (out / faults.LOCK_FILE).exists()
    lines = []
    _run(out, lines)
    assert lines[0].startswith("resumed from tuner step 1")
    assert _rows(out) == _rows(reference)


def test_failed_checkpoint_write_keeps_the_previous_one(reference, tmp_path, monkeypatch):
    """The disk fills while orbax writes step 2 (the state is written, the metadata fails)."""
    handler = ocp.handlers.JsonCheckpointHandler
    real = handler._save_fn

    async def full_disk(self, x, directory):
        if "members_lines" in x and x["members_lines"] > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))
        return await real(self, x, directory)

    monkeypatch.setattr(handler, "_save_fn", full_disk)
    with pytest.raises(faults.WriteError) as error:
        _run(tmp_path)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert f"{tmp_path}/checkpoints/2" in message and "ENOSPC" in message
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]  # no partial step left
    monkeypatch.undo()
    lines = []
    _run(tmp_path, lines)
    assert "resumed from tuner step 1 (4 records)" in lines
    assert _rows(tmp_path) == _rows(reference)


def test_records_write_failing_mid_line_is_dropped_on_resume(reference, tmp_path, monkeypatch):
    """ENOSPC after half a record was written: the half line must not count."""
    real = rundir.append_jsonl

    def full_after_half_a_line(path, rows):
        if os.path.getsize(path) > 0:
            with faults.writing(path), open(path, "a") as f:
                f.write(json.dumps(rows[0])[:40])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, rows)

    monkeypatch.setattr(rundir, "append_jsonl", full_after_half_a_line)
    with pytest.raises(faults.WriteError, match="members.jsonl .ENOSPC"):
        _run(tmp_path)
    monkeypatch.undo()
    lines = []
    _run(tmp_path, lines)
    assert any("dropped a cut-off line after record 4" in line for line in lines)
    assert _rows(tmp_path) == _rows(reference)


def test_checkpointed_records_lost_from_a_cut_file_are_rebuilt(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    data = (out / "members.jsonl").read_bytes()
    (out / "members.jsonl").write_bytes(data[: len(data) - 30])  # last record cut
    lines = []
    _run(out, lines)
    assert any("dropped a cut-off line after record 7" in line for line in lines)
    assert any("rebuilt 1 records from the checkpoint" in line for line in lines)
    assert (out / "members.jsonl").read_bytes() == data


def test_second_process_on_the_same_out_is_refused_before_compiling(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            # faults.py imports only the standard library: load it alone (no JAX start-up).
            "import importlib.util as u, time; "
            f"s = u.spec_from_file_location('faults', {faults.__file__!r}); "
            "f = u.module_from_spec(s); s.loader.exec_module(f); "
            f"f.RunLock({str(out)!r}).acquire(); print('held', flush=True); time.sleep(600)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        # What a binary does first with --out (before compiling): refused, exit 2.
        with pytest.raises(SystemExit) as exit_:
            _cli.prepare_out(str(out))
        assert exit_.value.code == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and f"is in use by another run (pid {holder.pid}" in lines[0]
        assert sorted(os.listdir(out)) == [faults.LOCK_FILE]  # nothing written
        with pytest.raises(faults.Locked):  # and the library's entry point refuses too
            _run(out)
    finally:
        holder.kill()
        holder.wait()
    warnings = []
    with faults.RunLock(str(out), log=warnings.append):  # the holder is dead: stale
        with open(out / faults.LOCK_FILE) as f:
            assert json.load(f)["pid"] == os.getpid()
    assert len(warnings) == 1 and f"from pid {holder.pid}" in warnings[0]
    assert not (out / faults.LOCK_FILE).exists()


def _schedule(path, **changes):
    n, steps, dims = 2, 3, 4
    arrays = dict(
        source=np.tile(np.arange(n, dtype=np.int32), (steps, 1)),
        restart=np.zeros((steps, n), bool),
        hparams=np.full((steps, n, dims), 0.5, np.float32),
        changed=np.zeros((steps, n), bool),
        budget=np.ones((steps, n), np.int32),
    )
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({}, None),
        ({"budget": None}, "missing fields budget"),
        ({"source": np.zeros((3, 5), np.int32)}, r"source has shape \(3, 5\)"),
        ({"hparams": np.full((3, 2, 4), np.nan, np.float32)}, "NaN"),
        ({"hparams": np.full((3, 2, 4), 2.0, np.float32)}, "unit cube"),
    ],
)
def test_bad_schedule_file_is_one_line(changes, message, tmp_path):
    path = _schedule(tmp_path / "s.npz", **changes)
    if message is None:
        assert experiments.load_schedule(path).hparams.shape == (3, 2, 4)
        return
    with pytest.raises(ValueError, match=message) as error:
        experiments.load_schedule(path)
    assert len(str(error.value).splitlines()) == 1 and path in str(error.value)


def test_run_directory_of_another_version_is_refused(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    records = (out / "members.jsonl").read_bytes()
    for root, _, files in os.walk(out / "checkpoints"):  # an incompatible state layout
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(3)
    with pytest.raises(ValueError, match="none of the checkpoints .steps .1, 2.. can be read"):
        _run(out)
    assert (out / "members.jsonl").read_bytes() == records  # not restarted over them
    settings = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(dict(settings, run_format=99)))
    with pytest.raises(ValueError, match="format 99"):
        rundir.check_settings(str(out), {})


def test_study_reads_a_run_whose_last_record_was_cut(tmp_path, capsys):
    """The study's reader drops a cut-off last line of members.jsonl with a warning on
    stderr (a kill while a record was written), keeping every complete record."""
    from jaxmbrl.experiments import study_runs

    (tmp_path / "config.json").write_text(json.dumps(dict(SMALL)))
    rows = [dict(member=m, trial=1, trial_return=float(m)) for m in range(2)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "members.jsonl").write_text(text + '{"member": 0, "tri')
    assert study_runs.load_run(str(tmp_path))["rows"] == rows
    err = capsys.readouterr().err
    assert "dropped a cut-off line after record 2" in err


def test_study_binary_stopped_by_a_signal_is_one_line_and_128_plus_n(tmp_path, monkeypatch):
    """The study binary when the run in flight stops on SIGTERM (experiments.run raises
    faults.Interrupted, as `test_binary_sigterm_exits_143_with_one_line_and_resumes` shows
    for a real signal): one line with the resume command, exit 143, the lock released. The
    rerun skipping finished runs: test_study's test_rerun_resumes_and_skips_finished_runs."""
    import cli

    from jaxmbrl.experiments import study

    def stopped(config, log):
        raise faults.Interrupted(signal.SIGTERM, f"stopped by SIGTERM: {config.out}/cartpole")

    def exit_(status):
        raise SystemExit(status)

    flags = [f"--out={tmp_path}", "--seeds=0", "--tuners=pbt"]
    monkeypatch.setattr(study, "run_study", stopped)
    monkeypatch.setattr(os, "_exit", exit_)  # the binary leaves with os._exit
    monkeypatch.setattr(sys, "argv", [os.path.join(REPO, "benchmarks", "study.py"), *flags])
    result = cli.run("benchmarks.study", *flags)
    assert result.code == 143, result.stderr
    assert len(result.lines) == 1, result.stderr
    line = result.lines[0]
    assert f"stopped by SIGTERM: {tmp_path}/cartpole" in line
    assert "resume: python -m benchmarks.study" in line and f"--out={tmp_path}" in line
    assert not (tmp_path / faults.LOCK_FILE).exists()
