"""Progress from inside a compiled population step (jax.debug.callback -> host tracker)."""

import dataclasses

import tiny

from jaxmbrl import experiments
from jaxmbrl.experiments.progress import Progress

# The suite's shared sizes (tests/tiny.py): the run without callbacks loads its program.
TINY = dict(tiny.RUN, tuner="pbt", ready_interval=1)


class Recorder(Progress):
    """Counts every reported env step that counts, per population step."""

    def __init__(self):
        super().__init__(log=lambda line: None, bar=False)
        self.steps_per_call: list[int] = []
        self.reports = 0

    def update(self, steps):
        self.reports += 1
        super().update(steps)

    def finish(self):
        self.steps_per_call.append(self.done)
        super().finish()


def _run_with_recorder(tmp_path, **overrides):
    config = experiments.TuneConfig(**{**TINY, "progress_every": 5, **overrides})
    recorder = Recorder()
    experiments.run(config, str(tmp_path), log=lambda line: None, progress=recorder)
    # Trials (random, then planned) of 2 members x 20 steps; reports at 5, 10, 15, 20.
    assert recorder.steps_per_call == [2 * 20] * config.trials
    assert recorder.reports == config.trials * 2 * 4
    return config


def test_every_env_step_is_reported_once_and_progress_changes_no_result(tmp_path):
    """Members one at a time (a real cond): every env step reported once; and the records
    equal those of the same run without callbacks (merged: the former
    test_progress_does_not_change_results, which ran PBT off and on)."""
    on = _run_with_recorder(tmp_path / "on", member_batch=1)
    off = dataclasses.replace(on, progress_every=0)
    experiments.run(off, str(tmp_path / "off"), log=lambda line: None)
    off_rows = (tmp_path / "off" / "members.jsonl").read_text()
    assert off_rows and (tmp_path / "on" / "members.jsonl").read_text() == off_rows


def test_every_env_step_is_reported_once_in_a_vmap(tmp_path):
    """Both members in one vmap (each member's policy a select between random and planned
    actions in one rollout): every env step reported once, per member."""
    _run_with_recorder(tmp_path, member_batch=2, trials=2)


def test_plain_lines_name_steps_rate_and_eta():
    lines = []
    progress = Progress(log=lines.append, bar=False, min_interval=0.0)
    progress.start("step 0 trial 1/1", members=2, trial_length=10)
    progress.update(10)
    progress.update(10)
    progress.update(10)  # more than the total (idle vmapped members): clamped
    assert progress.done == 20
    assert "20/20 env steps (2 member-trials done)" in lines[-1] and "ETA" in lines[-1]
