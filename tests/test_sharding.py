"""Members over devices and processes: same records on 1 or 2 devices and on 2 processes.

The multi-device tests run `benchmarks.tune` in subprocesses with XLA's forced CPU device
count (a process's device count is fixed when JAX starts), at the suite's shared run shape
(tests/tiny.py: 2 members), so the one-device reference is the test process's own run and
shares its programs with test_tuning's PBT-BT run. Every member gets the same key and runs
the same per-member function whatever the device count (its key is split before the
members are sharded; each device maps its members one at a time, as one device does).
Two processes x 1 device and one process x 2 devices run the same per-device program:
records bit-identical. 1 device vs 2 runs a 2-trip vs a 1-trip local loop, which XLA may
compile differently (a 1-trip loop is inlined and fused with its surroundings), so float32
rounding may differ: returns within 1e-5 relative, everything else (parents, hparams,
trials) exact.

The profiler's total and per-device rates are checked by test_throughput, whose end-to-end
run splits its members over 2 devices.
"""

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import pytest
import tiny

from jaxmbrl import experiments
from jaxmbrl.experiments import distributed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny but real (the suite's shared shape), and PBT-BT: its update both copies members
# (exploit) and restores archived elites (backtracking), gathers across devices.
SETTINGS = dict(tiny.RUN, tuner="pbt_bt", ready_interval=1)
RUN_FLAGS = tiny.flags(tuner="pbt_bt", ready_interval=1)
DEVICES = 2
TIMEOUT = 1500


def _env(devices):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _tune(out_dir, *extra):
    return [sys.executable, "-m", "benchmarks.tune", *RUN_FLAGS, f"--out={out_dir}", *extra]


def _run(out_dir, *extra, devices=DEVICES):
    result = subprocess.run(
        _tune(out_dir, *extra),
        cwd=REPO,
        env=_env(devices),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _members(out_dir):
    with open(os.path.join(out_dir, "members.jsonl")) as f:
        return [json.loads(line) for line in f]


def _summary(out_dir):
    with open(os.path.join(out_dir, "summary.json")) as f:
        summary = json.load(f)
    placement = summary.pop("placement")
    for timing in ("wall_seconds", "compile_seconds"):
        summary.pop(timing)
    return summary, placement


def _without_floats(tree):
    """`tree` with every float replaced by None (the exact part of a record)."""
    if isinstance(tree, dict):
        return {k: _without_floats(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_without_floats(v) for v in tree]
    return None if isinstance(tree, float) else tree


def _floats(tree):
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in _floats(tree[k])]
    if isinstance(tree, list):
        return [x for v in tree for x in _floats(v)]
    return [tree] if isinstance(tree, float) else []


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    """One uninterrupted run with its 2 members on 2 devices (the reference)."""
    out = tmp_path_factory.mktemp("sharding") / "two"
    _run(out)
    return out


@pytest.mark.slow
def test_two_devices_give_the_records_of_one_device(two_devices, tmp_path):
    """The one-device run is this (1-device) process's own, in-process."""
    one = tmp_path / "one"
    experiments.run(experiments.TuneConfig(**SETTINGS), str(one), log=lambda line: None)
    rows, rows_one = _members(str(two_devices)), _members(str(one))
    assert len(rows) == len(rows_one) == 2 * 4
    exact = lambda rows: [{**r, "trial_return": None} for r in rows]  # noqa: E731
    assert exact(rows) == exact(rows_one)
    returns = [r["trial_return"] for r in rows]
    assert returns == pytest.approx([r["trial_return"] for r in rows_one], rel=1e-5, abs=1e-7)
    summary_two, placement_two = _summary(str(two_devices))
    summary_one, placement_one = _summary(str(one))
    assert _without_floats(summary_two) == _without_floats(summary_one)
    assert _floats(summary_two) == pytest.approx(_floats(summary_one), rel=1e-5, abs=1e-7)
    # Every leaf of every member on one device, a different one per member.
    assert placement_two["devices"] == 2 and placement_two["processes"] == 1
    assert placement_two["member_devices"] == [[0], [1]]
    assert placement_one["member_devices"] == [[0]] * 2
    # PBT-BT copied members into other slots: a gather from another device.
    assert any(r["parent"] != r["member"] for r in rows)


@pytest.mark.slow
def test_sharded_run_killed_and_resumed_matches_uninterrupted_run(two_devices, tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _tune(killed),
        cwd=REPO,
        env=_env(DEVICES),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + TIMEOUT
    while not (killed / "checkpoints" / "2").exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "run finished before it could be killed"
    result = _run(killed)
    assert "resumed from tuner step" in result.stderr
    assert _members(str(killed)) == _members(str(two_devices))
    assert _summary(str(killed)) == _summary(str(two_devices))


@pytest.mark.slow
def test_two_processes_give_the_records_of_one_process_with_two_devices(two_devices, tmp_path):
    out, port = tmp_path / "two", _free_port()
    procs, logs = [], []
    for rank in range(2):
        stdout, stderr = (open(tmp_path / f"p{rank}.{s}", "w+") for s in ("out", "err"))
        logs.append((stdout, stderr))
        flags = (f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2")
        procs.append(
            subprocess.Popen(
                _tune(out, *flags, f"--process_id={rank}"),
                cwd=REPO,
                env=_env(1),
                stdout=stdout,
                stderr=stderr,
            )
        )
    try:
        codes = [proc.wait(timeout=TIMEOUT) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    texts = []
    for stdout, stderr in logs:
        stdout.seek(0), stderr.seek(0)
        texts.append((stdout.read(), stderr.read()))
        stdout.close(), stderr.close()
    assert codes == [0, 0], [err[-2000:] for _, err in texts]
    assert _members(str(out)) == _members(str(two_devices))
    summary, placement = _summary(str(out))
    assert summary == _summary(str(two_devices))[0]
    assert placement["processes"] == 2 and placement["devices"] == 2
    assert len({ids[0] for ids in placement["member_devices"]}) == 2
    # Each process wrote its own shards of the checkpoint; process 0 alone reported.
    state = out / "checkpoints" / "4" / "state"
    assert (state / "ocdbt.process_0").is_dir() and (state / "ocdbt.process_1").is_dir()
    assert "best return" in texts[0][0] and "best return" not in texts[1][0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags,message",
    [
        (("--population=3", "--devices=2"), "population=3 does not divide over devices=2"),
        (("--devices=3",), "devices=3 must be in [0, 2]"),
    ],
)
def test_population_not_dividing_over_devices_exits_2_with_one_line(flags, message, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        _tune(out, *flags), cwd=REPO, env=_env(DEVICES), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not out.exists()


def test_population_must_divide_over_the_mesh():
    n = len(jax.devices())
    mesh = distributed.make_mesh(0)
    assert mesh.size == n and mesh.axis_names == (distributed.AXIS,)
    distributed.check_population(3 * n, mesh)
    with pytest.raises(ValueError, match=rf"devices={n + 1} must be in \[0, {n}\]"):
        distributed.make_mesh(n + 1)
    with pytest.raises(ValueError, match="process_id=2 must be < num_processes=2"):
        experiments.TuneConfig(num_processes=2, process_id=2).validate()
    with pytest.raises(ValueError, match="devices=-1 must be >= 0"):
        experiments.TuneConfig(devices=-1).validate()


def test_placement_settings_may_change_on_resume(tmp_path):
    """A run resumed on another device count or process layout is the same run."""
    run_lib = importlib.import_module("jaxmbrl.experiments.run")  # the package's `run` is a fn
    run_lib.check_settings(str(tmp_path), experiments.TuneConfig())
    moved = experiments.TuneConfig(devices=4, coordinator_address="auto", num_processes=2)
    run_lib.check_settings(str(tmp_path), moved)
    with pytest.raises(ValueError, match="seed=0"):
        run_lib.check_settings(str(tmp_path), experiments.TuneConfig(seed=1))
