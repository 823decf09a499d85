"""A tuning run's pieces: env, space, PETS agent, population and tuner, and its programs.

Zhang et al., "On the Importance of Hyperparameter Optimization for Model-based
Reinforcement Learning", AISTATS 2021: random search, Hyperband, PBT and PBT-BT tuning PETS.
`build(config)` assembles the experiment; `init_run` its state; `compile_programs` the two
AOT-compiled programs the host loop (`experiments.run`) calls: the population step (one
trial for every member) and the tuner's update + exploit. The members are sharded over the
devices of `config.devices` (`experiments.distributed`): both programs are one SPMD program
over the whole mesh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import envs, tuners
from jaxmbrl import population as population_lib
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets
from jaxmbrl.experiments import distributed
from jaxmbrl.experiments import hparams as hparams_lib
from jaxmbrl.experiments.config import TuneConfig
from jaxmbrl.experiments.schedules import load_schedule


class Experiment(NamedTuple):
    config: TuneConfig
    env: Any
    space: tuners.SearchSpace
    agent: pets_lib.PETS
    population: population_lib.Population
    tuner: tuners.Tuner
    base_hparams: pets_lib.PETSHParams
    mesh: jax.sharding.Mesh  # axis `members`: the devices the members are split over


def tuner_settings(config: TuneConfig) -> dict[str, Any]:
    """Keyword settings of `tuners.REGISTRY[config.tuner]` for this run (after space, N)."""
    step = config.ready_interval
    if config.tuner == "hyperband":
        return dict(max_budget=config.trials, eta=config.eta)
    if config.tuner == "bohb":
        return dict(
            max_budget=config.trials,
            eta=config.eta,
            top_n_percent=config.bohb_top_n_percent,
            num_samples=config.bohb_num_samples,
            random_fraction=config.bohb_random_fraction,
            bandwidth_factor=config.bohb_bandwidth_factor,
        )
    if config.tuner == "pb2":
        return dict(
            step_trials=step,
            first_step_trials=step,
            history=config.pb2_history,
            num_candidates=config.pb2_candidates,
        )
    if config.tuner == "pbt_bt":
        # The study checks for backtracking every 30 of its 60 updates: keep that ratio.
        updates = -(-config.trials // step)
        return dict(step_trials=step, first_step_trials=step, delta_t=max(1, updates // 2))
    return dict(step_trials=step, first_step_trials=step)


def make_tuner(config: TuneConfig, space: tuners.SearchSpace) -> tuners.Tuner:
    """The run's tuner from the registry (or the replay of a recorded schedule)."""
    if config.tuner != "replay":
        return tuners.REGISTRY[config.tuner](space, config.population, **tuner_settings(config))
    schedule = load_schedule(config.schedule)
    if schedule.hparams.shape[-1] != space.dim:
        raise ValueError(
            f"schedule={config.schedule!r} has {schedule.hparams.shape[-1]} "
            f"hyperparameters, space {config.space!r} has {space.dim}"
        )
    # Archive restores (PBT-BT) cannot be replayed as copies: replay hparams only then.
    copies = bool((schedule.source < config.population).all())
    return tuners.make_schedule_replay(schedule, space, copy_sources=copies)


def build(
    config: TuneConfig, on_progress: Callable[[jax.Array, jax.Array], None] | None = None
) -> Experiment:
    """Env, search space, agent, population and tuner for `config` (validated).

    Args:
      config: the run's settings.
      on_progress: host callback of the agent's compiled trial (see `make_pets`), called
        every `config.progress_every` env steps; None: no callbacks compiled in.

    Call `distributed.initialize` first in a multi-process run: this looks at the devices.
    """
    config.validate()
    mesh = distributed.make_mesh(config.devices)
    distributed.check_population(config.population, mesh)
    env = envs.load(config.env)
    space = tuners.get_space(config.space, env=config.env)
    overrides = {"trial_length": config.trial_length} if config.trial_length else {}
    if on_progress is not None:
        overrides["progress_every"] = config.progress_every
    pets_config, space = hparams_lib.config_for_space(
        env, config.preset, config.trials, space, **overrides
    )
    agent = pets_lib.make_pets(env, pets_config, on_progress=on_progress)
    base = presets.study_hparams(agent)
    population = population_lib.make_population(
        agent,
        config.population,
        hparams_lib.unit_to_hparams(space, base),
        # Resolved for the whole population, not a device's share, so that each member runs
        # the same computation whatever the device count (records match across counts).
        member_batch=population_lib.resolve_member_batch(config.member_batch, config.population),
        distribute=distributed.shard_members(mesh),
    )
    tuner = make_tuner(config, space)
    return Experiment(config, env, space, agent, population, tuner, base, mesh)


class RunState(NamedTuple):
    """Everything a resumed run needs (saved by the checkpointer)."""

    population: population_lib.PopulationState
    tuner: Any
    key: jax.Array
    step: jax.Array  # int32: tuner updates done
    elapsed: jax.Array  # int32: trials done by the longest-running slot


def init_run(exp: Experiment) -> RunState:
    """The run's first state, members already split over `exp.mesh` (one program)."""

    def init() -> RunState:
        key = jax.random.PRNGKey(exp.config.seed)
        tuner_key, pop_key, key = jax.random.split(key, 3)
        unit = exp.space.default_unit(exp.config.population)
        pop_state = exp.population.init(pop_key, unit)
        one_member = jax.tree.map(lambda x: x[0], pop_state.members)
        tuner_state = exp.tuner.init(tuner_key, one_member)
        pop_state = exp.population.apply(
            pop_state, tuner_state.decision, exp.tuner.archive(tuner_state)
        )
        return RunState(pop_state, tuner_state, key, jnp.int32(0), jnp.int32(0))

    return jax.jit(init, out_shardings=run_shardings(exp, jax.eval_shape(init)))()


def run_shardings(exp: Experiment, run: RunState) -> RunState:
    """Shardings of a run state: population split over the members axis, the rest replicated."""
    rep = distributed.replicated(exp.mesh)
    return RunState(
        population=distributed.population_shardings(run.population, exp.mesh),
        tuner=jax.tree.map(lambda _: rep, run.tuner),
        key=rep,
        step=rep,
        elapsed=rep,
    )


class Programs(NamedTuple):
    step: Callable
    update: Callable
    compile_seconds: float


def compile_programs(exp: Experiment, run: RunState) -> Programs:
    """AOT-compiles the population step and the tuner update+apply, timing compilation."""
    start = time.perf_counter()
    shardings = run_shardings(exp, run)
    pop, rep = shardings.population, distributed.replicated(exp.mesh)
    active = distributed.to_global(np.ones((exp.config.population,), bool), rep)
    # Pusher needs XLA:CPU's fusion emitters off (env.compiler_options), see BUILD_NOTES.
    # Metrics come back replicated: every process reads all members' records.
    options = exp.env.compiler_options
    step = jax.jit(
        exp.population.step,
        in_shardings=(pop, rep),
        out_shardings=(pop, rep),
        compiler_options=options,
    )
    step = step.lower(run.population, active).compile()

    def update(key, tuner_state, pop_state):
        fitness = exp.population.fitness(pop_state)
        tuner_state, decision = exp.tuner.update(key, tuner_state, fitness, pop_state.members)
        pop_state = exp.population.apply(pop_state, decision, exp.tuner.archive(tuner_state))
        return tuner_state, pop_state, fitness

    update = jax.jit(
        update, in_shardings=(rep, shardings.tuner, pop), out_shardings=(shardings.tuner, pop, rep)
    )
    update = update.lower(run.key, run.tuner, run.population).compile()
    return Programs(step, update, time.perf_counter() - start)


def remaining_budget(exp: Experiment, run: RunState) -> np.ndarray:
    """Trials each slot runs before the next update; all zero when the run is over."""
    budget = np.asarray(run.tuner.decision.budget)
    if isinstance(run.tuner, tuners.HyperbandState):  # Hyperband and BOHB
        if bool(tuners.is_done(run.tuner)):
            return np.zeros_like(budget)
        # Hyperband counts one trial per update (its budget is what a job has left), so
        # it is updated after every trial: running the whole budget first over-trained.
        budget = np.minimum(budget, 1)
    else:
        budget = np.minimum(budget, exp.config.trials - int(run.elapsed))
    return np.maximum(budget, 0)
