"""The examples of `jaxmbrl.tuners` outside jaxmbrl (examples/) run and do what they claim.

Small sizes (8 members, a few rounds of a few AdamW steps) keep each compile and run to
seconds on CPU. `import jaxmbrl.tuners` must stay free of the heavy dependencies.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from examples import checkpoint_resume, pbt_regression, pbt_seeds
from examples.pbt_regression import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = Config(population=8, rounds=6, steps_per_round=20)


@pytest.fixture(scope="module")
def logs():
    """Per-round logs of PBT and of random search (no exploit) from the same key."""
    key = jax.random.PRNGKey(0)
    return {
        name: jax.tree.map(np.asarray, pbt_regression.make_experiment(SMALL, name).run(key)[1])
        for name in ("pbt", "random_search")
    }


def test_import_of_tuners_pulls_in_no_mujoco_flax_or_orbax():
    code = (
        "import json, sys, jaxmbrl, jaxmbrl.tuners; "
        "print(json.dumps([jaxmbrl.__file__, sorted(sys.modules)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    path, modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert path.startswith(ROOT), path  # this checkout, not another installed copy
    heavy = sorted(m for m in modules if m.split(".")[0] in ("mujoco", "flax", "orbax"))
    assert not heavy, f"import jaxmbrl.tuners imports {heavy}"


def test_pbt_population_ends_better_than_the_untuned_one(logs):
    pbt = pbt_regression.summarize(logs["pbt"])
    untuned = pbt_regression.summarize(logs["random_search"])
    # Same key: both start from the same sampled configurations and the same weights.
    np.testing.assert_array_equal(
        logs["pbt"].decision.hparams[0], logs["random_search"].decision.hparams[0]
    )
    np.testing.assert_array_equal(logs["pbt"].start_loss[0], logs["random_search"].start_loss[0])
    assert pbt["best_loss"] < untuned["median_loss"]
    # Exploit spreads good weights: most of the population ends near the best member.
    assert pbt["median_loss"] < untuned["median_loss"]
    assert untuned["copies"] == 0


def test_exploit_copies_the_parents_weights(logs):
    log = logs["pbt"]
    n = SMALL.population
    source = log.decision.source  # [R, N]; row t: the decision run in round t
    copied = source[1:] != np.arange(n)
    assert copied.sum() >= 2 * (SMALL.rounds - 1)  # zhang2021 preset, N = 8: 2 copy per round
    # A member's loss after exploit is its source's loss at the end of the previous round,
    # computed on the same weights: equal for copies and for members that stayed.
    before = np.take_along_axis(log.loss[:-1], source[1:], axis=1)
    np.testing.assert_array_equal(log.start_loss[1:], before)
    # ... and a copy's own previous weights were different (else the check proves nothing).
    assert np.all(log.start_loss[1:][copied] != log.loss[:-1][copied])
    # Copies also take the parent's hyperparameters, perturbed (exploit then explore).
    assert np.all(log.decision.changed[1:] == copied)


def test_main_prints_results(capsys):
    out = pbt_regression.main(SMALL)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pbt ") and lines[1].startswith("random_search ")
    assert out["pbt"]["lineage_slots"][-1] == out["pbt"]["best_member"]


def test_vmapped_seeds_match_runs_one_by_one(logs):
    seeds = [0, 1, 2]
    _, batched = jax.tree.map(np.asarray, pbt_seeds.run_seeds(SMALL, seeds))
    exp = pbt_regression.make_experiment(SMALL)
    for s, seed in enumerate(seeds):
        _, single = jax.tree.map(np.asarray, exp.run(jax.random.PRNGKey(seed)))
        for field in single.decision._fields:
            np.testing.assert_array_equal(
                getattr(batched.decision, field)[s], getattr(single.decision, field), field
            )
        # XLA:CPU picks reduction kernels by shape, so batching seeds moves the losses by a
        # few float32 ulps (measured: <= 2.4e-7 absolute); decisions above are identical.
        np.testing.assert_allclose(batched.loss[s], single.loss, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(batched.start_loss[s], single.start_loss, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(batched.loss[0], logs["pbt"].loss, rtol=1e-5, atol=1e-7)
    # The seeds are independent runs, not copies of one.
    assert not np.array_equal(batched.decision.hparams[0], batched.decision.hparams[1])


def test_vmapped_seeds_main_prints_one_line_per_seed(capsys):
    summaries = pbt_seeds.main(SMALL, seeds=(0, 1))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["seed 0", "seed 1"]
    assert len(summaries) == 2


def test_restored_checkpoint_continues_bit_identically(tmp_path):
    key = jax.random.PRNGKey(3)
    exp = pbt_regression.make_experiment(SMALL)
    final, log = exp.run(key)
    split = 2
    resumed, log1, log2 = checkpoint_resume.interrupted_run(SMALL, key, split, str(tmp_path))
    assert os.listdir(tmp_path) == [f"round_{split}"]
    assert checkpoint_resume.trees_equal(final, resumed)
    joined = jax.tree.map(lambda a, b: np.concatenate([a, b]), log1, log2)
    assert checkpoint_resume.trees_equal(log, joined)
    assert int(resumed.tuner_state.step) == SMALL.rounds
    # The comparison can fail: a run continued from another state differs.
    other, _ = exp.run(jax.random.PRNGKey(4))
    assert not checkpoint_resume.trees_equal(final, other)


def test_checkpoint_main_reports_identical_continuation(capsys):
    out = checkpoint_resume.main(SMALL, split=2)
    assert out["same_state"] and out["same_log"]
    assert "bit-identical: True" in capsys.readouterr().out
