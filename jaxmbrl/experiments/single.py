"""One PETS agent (Chua et al., NeurIPS 2018) for a number of trials: the untuned baseline.

What `benchmarks/pets.py` runs: the study's default hyperparameters (Zhang et al., AISTATS
2021), optionally overridden, compiled without padding (nothing is tuned), one jitted
trial + model fit per call. Writes `trials.jsonl` (one line per trial) and `summary.json`
into a run directory; compile time is measured apart from the trials.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxmbrl import envs
from jaxmbrl.agents import hparams as hparams_lib
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets
from jaxmbrl.experiments import rundir
from jaxmbrl.models.ensemble import FORWARD_DTYPES
from jaxmbrl.options import check_options, option

# Hyperparameter fields of AgentConfig: overrides of the study's defaults when set.
HPARAM_FIELDS = (
    "learning_rate",
    "weight_decay",
    "epochs",
    "horizon",
    "population",
    "iterations",
    "elite_ratio",
    "alpha",
)


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Settings of one agent's run (the flags of `benchmarks/pets.py`)."""

    env: str = option("cartpole", "Environment.", choices=envs.ALL_ENVS)
    trials: int = option(10, "Trials to run (the first acts at random).", low=1)
    seed: int = option(0, "Random seed.")
    preset: str = option("tiny", "Model/planner sizes.", choices=presets.PRESETS)
    trial_length: int = option(
        0, "Env steps per trial (0: the preset's; tiny caps episodes at 100).", low=0
    )
    learning_rate: float | None = option(None, "Model learning rate (default: the study's).")
    weight_decay: float | None = option(None, "Model weight decay.")
    epochs: int | None = option(None, "Model training epochs per trial.")
    horizon: int | None = option(None, "Planning horizon.")
    population: int | None = option(None, "CEM population.")
    iterations: int | None = option(None, "CEM iterations.")
    elite_ratio: float | None = option(None, "CEM elite ratio.")
    alpha: float | None = option(None, "CEM momentum alpha.")
    forward_dtype: str = option(
        "float32",
        "Matmul operands of the model's forward passes inside planning (training: float32).",
        choices=FORWARD_DTYPES,
    )

    def validate(self) -> None:
        """Raises ValueError with one line naming the bad value and the valid choices."""
        check_options(self)

    def overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in HPARAM_FIELDS if getattr(self, k) is not None}


def build(config: AgentConfig) -> tuple[pets_lib.PETS, pets_lib.PETSHParams]:
    """The agent at the smallest program for its hyperparameters; ValueError on bad values."""
    config.validate()
    env = envs.load(config.env)
    length = {"trial_length": config.trial_length} if config.trial_length else {}
    pets_config = presets.pets_config(
        env, config.preset, config.trials, model_forward_dtype=config.forward_dtype, **length
    )
    agent = pets_lib.make_pets(env, pets_config)
    hparams = hparams_lib.with_overrides(
        agent, presets.study_hparams(agent, config.preset), **config.overrides()
    )
    # Nothing is tuned here: compile the smallest program for these hyperparameters.
    agent = pets_lib.make_pets(env, presets.fit_config(pets_config, hparams))
    flat = hparams_lib.hparams_dict(hparams)
    return agent, hparams_lib.replace_hparams(agent.default_hparams, flat)


def run(config: AgentConfig, out_dir: str, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs the agent, writing `trials.jsonl` and `summary.json` under `out_dir`.

    Args:
      config: the run's settings (validated here, before anything compiles).
      out_dir: run directory; one holding a run with other settings is refused.
      log: receives one line per trial.

    Returns:
      The summary (also in `summary.json`).
    """
    agent, hparams = build(config)
    rundir.prepare_out_dir(out_dir)
    rundir.check_settings(out_dir, dataclasses.asdict(config))
    values = {k: v.item() for k, v in hparams_lib.hparams_dict(hparams).items()}
    log(f"config {agent.config}")
    log(f"hparams {values}")
    key = jax.random.PRNGKey(config.seed)
    init_key, key = jax.random.split(key)
    state = jax.jit(agent.init)(init_key, hparams)
    start = time.perf_counter()
    step = jax.jit(agent.trial_and_train, compiler_options=agent.env.compiler_options)
    step = step.lower(key, state, hparams).compile()
    compile_s = time.perf_counter() - start
    log(f"compiled trial+train in {compile_s:.1f} s")
    path = os.path.join(out_dir, "trials.jsonl")
    rundir.restore_lines(path, 0, None, log)  # a rerun with the same settings starts afresh
    records = []
    for trial in range(config.trials):  # host loop over trials: one compiled call each
        key, trial_key = jax.random.split(key)
        start = time.perf_counter()
        state, metrics = step(trial_key, state, hparams)
        metrics = jax.device_get(metrics)
        seconds = time.perf_counter() - start
        record = dict(
            trial=trial,
            env=config.env,
            seed=config.seed,
            trial_return=float(metrics["trial_return"]),
            diverged=bool(metrics["diverged"] > 0.5),
            seconds=seconds,
            model={
                k[6:]: float(np.asarray(v))
                for k, v in metrics.items()
                if k.startswith("model/") and np.ndim(v) == 0
            },
        )
        rundir.append_jsonl(path, [record])
        records.append(record)
        log(
            f"trial {trial:3d}  return {record['trial_return']:9.2f}  "
            f"{'DIVERGED ' if record['diverged'] else ''}{seconds:7.2f} s"
        )
    returns = [r["trial_return"] for r in records]
    summary = dict(
        **dataclasses.asdict(config),
        hparams=values,
        returns=returns,
        best_return=max(returns),
        final_return=returns[-1],
        diverged_trials=[r["trial"] for r in records if r["diverged"]],
        compile_seconds=compile_s,
        trial_seconds=[r["seconds"] for r in records],
    )
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
