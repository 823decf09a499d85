"""Progress from inside a compiled population step (jax.debug.callback -> host tracker)."""

import dataclasses

import pytest

from jaxmbrl import experiments
from jaxmbrl.experiments.progress import Progress

TINY = dict(env="cartpole", population=2, trials=2, ready_interval=1, preset="tiny")


class Recorder(Progress):
    """Counts every reported env step that counts, per population step."""

    def __init__(self):
        super().__init__(log=lambda line: None, bar=False)
        self.steps_per_call: list[int] = []
        self.reports = 0

    def update(self, steps, counts):
        if bool(counts):
            self.reports += 1
        super().update(steps, counts)

    def finish(self):
        self.steps_per_call.append(self.done)
        super().finish()


@pytest.mark.parametrize("member_batch", [1, 2])  # one at a time (a real cond); one vmap
def test_every_env_step_is_reported_once(tmp_path, member_batch):
    config = experiments.TuneConfig(
        tuner="random_search",
        trial_length=12,
        progress_every=5,
        member_batch=member_batch,
        **TINY,
    )
    recorder = Recorder()
    experiments.run(config, str(tmp_path), log=lambda line: None, progress=recorder)
    # Two trials (random, then planned) of 2 members x 12 steps; reports at 5, 10, 12.
    assert recorder.steps_per_call == [2 * 12, 2 * 12]
    assert recorder.reports == 2 * 2 * 3


def test_progress_does_not_change_results(tmp_path):
    config = experiments.TuneConfig(tuner="pbt", trial_length=12, progress_every=0, **TINY)
    experiments.run(config, str(tmp_path / "off"), log=lambda line: None)
    on = dataclasses.replace(config, progress_every=4)
    experiments.run(on, str(tmp_path / "on"), log=lambda line: None, progress=Recorder())
    off_rows = (tmp_path / "off" / "members.jsonl").read_text()
    assert off_rows and (tmp_path / "on" / "members.jsonl").read_text() == off_rows


def test_plain_lines_name_steps_rate_and_eta():
    lines = []
    progress = Progress(log=lines.append, bar=False, min_interval=0.0)
    progress.start("step 0 trial 1/1", members=2, trial_length=10)
    progress.update(10, True)
    progress.update(10, False)  # the other side of a vmapped cond: not counted
    progress.update(10, True)
    progress.update(10, True)  # more than the total (idle vmapped members): clamped
    assert progress.done == 20
    assert "20/20 env steps (2 member-trials done)" in lines[-1] and "ETA" in lines[-1]
