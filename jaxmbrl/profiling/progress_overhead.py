"""What progress callbacks from inside a compiled trial cost (issue 11: must be < 1%).

The same population step (one trial of every PETS member, Zhang et al.'s setting) is
compiled twice, without callbacks and with a `jax.debug.callback` every `progress_every`
env steps, and the two are timed interleaved (one call of each per round, best of each),
so load on a shared host hits both alike.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp

from jaxmbrl import envs
from jaxmbrl.experiments import tuning
from jaxmbrl.experiments.config import TuneConfig
from jaxmbrl.experiments.progress import Progress
from jaxmbrl.options import check_options, option


@dataclasses.dataclass(frozen=True)
class OverheadConfig:
    """What `benchmarks/progress_overhead.py` measures (its flags)."""

    env: str = option("cartpole", "Environment.", choices=envs.ALL_ENVS)
    population: int = option(4, "Members.", low=1)
    progress_every: int = option(50, "Env steps between callbacks.", low=1)
    rounds: int = option(7, "Interleaved rounds (best of each kept).", low=1)
    seed: int = option(0, "Random seed.")

    def validate(self) -> None:
        check_options(self)


def _program(config: OverheadConfig, progress_every: int, sink: Progress | None):
    tune = TuneConfig(
        env=config.env,
        population=config.population,
        trials=4,
        ready_interval=1,
        preset="tiny",
        seed=config.seed,
        progress_every=progress_every,
    )
    exp = tuning.build(tune, on_progress=sink.update if sink else None)
    run = tuning.init_run(exp)
    active = jnp.ones((config.population,), bool)
    step = jax.jit(exp.population.step, compiler_options=exp.env.compiler_options)
    step = step.lower(run.population, active).compile()
    state, _ = jax.block_until_ready(step(run.population, active))  # the random trial
    return step, state, active, exp.agent.config.trial_length


def measure(config: OverheadConfig) -> dict[str, Any]:
    """Best wall seconds of a planned tiny trial with and without callbacks, and the ratio."""
    config.validate()
    sink = Progress(log=lambda line: None, bar=False)
    programs = {
        "without": _program(config, 0, None),
        "with": _program(config, config.progress_every, sink),
    }
    best = {name: float("inf") for name in programs}
    for _ in range(config.rounds):
        for name, (step, state, active, length) in programs.items():
            sink.start(name, config.population, length)
            start = time.perf_counter()
            jax.block_until_ready(step(state, active))
            best[name] = min(best[name], time.perf_counter() - start)
            sink.finish()
    length = programs["with"][3]
    callbacks = config.population * -(-length // config.progress_every)
    return dict(
        config=dataclasses.asdict(config),
        trial_length=length,
        callbacks_per_trial=callbacks,
        seconds_without=best["without"],
        seconds_with=best["with"],
        overhead=best["with"] / best["without"] - 1.0,
    )
