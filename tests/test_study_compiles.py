"""One compile per program (issue 19, part 3): a replayed schedule is data, not a constant.

The study of Zhang et al. (AISTATS 2021) replays many schedules (the default, every tuner's
best, on new seeds and envs); each must reuse the programs compiled for the first.
"""

import json
import os

import jax
import numpy as np
import tiny
from compiles import count_compiles

from jaxmbrl import tuners
from jaxmbrl.experiments import TuneConfig, study_runs, tuning
from jaxmbrl.experiments.run import run as run_tuning

SPACE = tuners.SearchSpace((tuners.Float("a", 0.0, 1.0), tuners.Float("b", 0.0, 1.0)))


def test_one_jitted_replay_runs_two_schedules_of_other_lengths():
    short = tuners.hparams_schedule(np.full((2, 2), 0.25), 3, 1)
    long = tuners.hparams_schedule(np.linspace(0, 1, 8).reshape(4, 2), 3, 2)
    tuner = tuners.make_schedule_replay(short, SPACE, steps=5)

    def run(table):
        state = tuner.init(jax.random.key(0), None, table=table)
        decisions = [state.decision]
        for t in range(5):
            state, d = tuner.update(jax.random.key(t), state, np.zeros(3), None)
            decisions.append(d)
        return tuners.stack_decisions(decisions)

    run = jax.jit(run)
    with count_compiles() as compiled:
        got_short = run(tuners.replay_table(short, steps=5))
        got_long = run(tuners.replay_table(long, steps=5))
    assert compiled.count("run") == 1
    # Recorded entries, then the last hyperparameters held (budget too), never restarting.
    np.testing.assert_allclose(got_long.hparams[:4], long.hparams)
    np.testing.assert_allclose(got_long.hparams[4:], np.broadcast_to(long.hparams[3], (2, 3, 2)))
    np.testing.assert_array_equal(got_long.budget[:, 0], [2, 2, 2, 2, 2, 2])
    np.testing.assert_allclose(got_short.hparams, np.full((6, 3, 2), 0.25))
    assert not np.asarray(got_long.restart[1:]).any() and np.asarray(got_long.restart[0]).all()


# The suite's shared run shape (tests/tiny.py): the population step may come from the
# persistent cache (a cache hit is still a compile of this process, and is counted).
TINY = dict(tiny.RUN, ready_interval=1)


def _hparams_by_trial(out_dir):
    with open(os.path.join(out_dir, "members.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return {(r["trial"], r["member"]): r["hparams"] for r in rows}


def test_replays_of_two_schedules_and_seeds_compile_each_program_once(tmp_path):
    tuning.clear_cache()
    space = tuning.build(TuneConfig(tuner="random_search", **TINY)).space
    static = study_runs.fixed_schedule(space.default_unit(), 2, 1)
    unit = np.stack([space.sample_unit(jax.random.key(k), 1)[0] for k in range(3)])
    dynamic = study_runs.fixed_schedule(np.asarray(unit), 2, np.ones(3, int))
    paths = [
        study_runs.save_schedule(str(tmp_path / "sched" / name), sched)
        for name, sched in (("static", static), ("dynamic", dynamic))
    ]
    before = tuning.compile_stats()
    with count_compiles() as compiled:
        for k, (path, seed) in enumerate(zip(paths, (0, 1), strict=True)):
            config = TuneConfig(tuner="replay", schedule=path, seed=seed, **TINY)
            run_tuning(config, str(tmp_path / f"run{k}"), log=lambda _: None)
    # One init, one population step and one update for both replays (other schedule, seed).
    assert (compiled.count("init"), compiled.count("step"), compiled.count("update")) == (1, 1, 1)
    stats = tuning.compile_stats()
    assert stats["compiled"] - before["compiled"] == 3 and stats["seconds"] > before["seconds"]
    # ...and the second replay ran its own schedule, not the one the programs were built for.
    got = _hparams_by_trial(str(tmp_path / "run1"))
    for trial in (1, 2, 3):
        want = space.to_dicts(np.asarray(unit[trial - 1 : trial]))[0]
        for name, value in want.items():
            assert np.isclose(got[(trial, 0)][name], value, rtol=1e-5), (trial, name)
    first = _hparams_by_trial(str(tmp_path / "run0"))
    assert first[(1, 0)] == first[(3, 1)] != got[(1, 0)]
