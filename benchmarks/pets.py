r"""Runs one PETS agent for a number of trials and prints each trial's return and timing.

  python -m benchmarks.pets --env=cartpole --trials=10 --preset=tiny --out=/tmp/pets.jsonl

Compile time is measured separately (ahead-of-time compilation of the trial+train step).
"""

from __future__ import annotations

import json
import sys
import time

import jax
import numpy as np
from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import envs
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets

_ENV = flags.DEFINE_enum("env", "cartpole", list(envs.ALL_ENVS), "Environment.")
_TRIALS = flags.DEFINE_integer("trials", 10, "Trials to run (the first is random).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_PRESET = flags.DEFINE_enum("preset", "tiny", list(presets.PRESETS), "Model/planner sizes.")
_TRIAL_LENGTH = flags.DEFINE_integer(
    "trial_length", 0, "Env steps per trial (0: the preset's; tiny caps episodes at 100)."
)
_OUT = flags.DEFINE_string("out", None, "Optional JSONL file: one line per trial.")
_HP = {
    "learning_rate": flags.DEFINE_float("learning_rate", None, "Model learning rate."),
    "weight_decay": flags.DEFINE_float("weight_decay", None, "Model weight decay."),
    "epochs": flags.DEFINE_integer("epochs", None, "Model training epochs per trial."),
    "horizon": flags.DEFINE_integer("horizon", None, "Planning horizon."),
    "population": flags.DEFINE_integer("population", None, "CEM population."),
    "iterations": flags.DEFINE_integer("iterations", None, "CEM iterations."),
    "elite_ratio": flags.DEFINE_float("elite_ratio", None, "CEM elite ratio."),
    "alpha": flags.DEFINE_float("alpha", None, "CEM momentum alpha."),
}


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # keep stderr for our own lines
    _cli.check(_TRIALS.value >= 1, f"--trials={_TRIALS.value} must be >= 1")
    _cli.enable_compilation_cache()
    env = envs.load(_ENV.value)
    _cli.check(_TRIAL_LENGTH.value >= 0, f"--trial_length={_TRIAL_LENGTH.value} must be >= 0")
    length = {"trial_length": _TRIAL_LENGTH.value} if _TRIAL_LENGTH.value else {}
    config = presets.pets_config(env, _PRESET.value, _TRIALS.value, **length)
    agent = pets_lib.make_pets(env, config)
    overrides = {k: f.value for k, f in _HP.items() if f.value is not None}
    try:
        hparams = pets_lib.with_overrides(agent, presets.study_hparams(agent), **overrides)
    except ValueError as error:
        _cli.usage_error(str(error))
    # Nothing is tuned here: compile the smallest program for these hyperparameters.
    config = presets.fit_config(config, hparams)
    agent = pets_lib.make_pets(env, config)
    hparams = pets_lib.replace_hparams(agent.default_hparams, pets_lib.hparams_dict(hparams))
    print(f"config {config}", file=sys.stderr)
    print(
        f"hparams { {k: v.item() for k, v in pets_lib.hparams_dict(hparams).items()} }",
        file=sys.stderr,
    )

    key = jax.random.PRNGKey(_SEED.value)
    init_key, key = jax.random.split(key)
    state = jax.jit(agent.init)(init_key, hparams)
    start = time.perf_counter()
    step = jax.jit(agent.trial_and_train, compiler_options=env.compiler_options)
    step = step.lower(key, state, hparams).compile()
    compile_s = time.perf_counter() - start
    print(f"compiled trial+train in {compile_s:.1f} s", file=sys.stderr)
    out = open(_OUT.value, "w") if _OUT.value else None
    for trial in range(_TRIALS.value):
        key, trial_key = jax.random.split(key)
        start = time.perf_counter()
        state, metrics = step(trial_key, state, hparams)
        metrics = jax.device_get(metrics)
        seconds = time.perf_counter() - start
        record = dict(
            trial=trial,
            env=env.name,
            seed=_SEED.value,
            trial_return=float(metrics["trial_return"]),
            diverged=bool(metrics["diverged"] > 0.5),
            seconds=seconds,
            compile_seconds=compile_s if trial == 0 else 0.0,
            model={
                k[6:]: float(np.asarray(v))
                for k, v in metrics.items()
                if k.startswith("model/") and np.ndim(v) == 0
            },
        )
        print(
            f"trial {trial:3d}  return {record['trial_return']:9.2f}  "
            f"{'DIVERGED ' if record['diverged'] else ''}{seconds:7.2f} s"
        )
        if out:
            out.write(json.dumps(record) + "\n")
            out.flush()
    if out:
        out.close()


if __name__ == "__main__":
    _cli.prefer_wide_vectors()  # before JAX initialises its backend
    app.run(main, flags_parser=_cli.parse_flags)
