"""A tuning run's pieces: env, space, PETS agent, population and tuner, and its programs.

Zhang et al., "On the Importance of Hyperparameter Optimization for Model-based
Reinforcement Learning", AISTATS 2021: random search, Hyperband, PBT and PBT-BT tuning PETS.
`build(config)` assembles the experiment; `init_run` its state; `compile_programs` the two
AOT-compiled programs the host loop (`experiments.run`) calls: the population step (one
trial for every member) and the tuner's update + exploit. The members are sharded over the
devices of `config.devices` (`experiments.distributed`): both programs are one SPMD program
over the whole mesh.

One compile per program in a process: the agent, population and compiled programs are kept
per static setting (env, preset, population shape, ...), not per run, and everything a run
changes without changing a shape is an argument: the seed, and the replayed schedule (a
`tuners.ReplayTable` in the tuner's state). So a study's tuners, seeds and replays on one env
share one population step, and each tuner (replay included) one init and one update.
"""

from __future__ import annotations

import dataclasses
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
    replay: tuners.ReplayTable | None = None  # tuner 'replay': the schedule, traced


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


def replay_steps(config: TuneConfig) -> int:
    """Entries of a replay's table: a run of `trials` trials makes at most trials + 1 decisions
    (every update runs >= 1 trial), so every replay of a run shape has one table shape."""
    return config.trials + 1


def make_tuner(config: TuneConfig, space: tuners.SearchSpace) -> tuners.Tuner:
    """The run's tuner from the registry (or the replay of a recorded schedule)."""
    if config.tuner != "replay":
        return tuners.REGISTRY[config.tuner](space, config.population, **tuner_settings(config))
    schedule, copies = _replay_schedule(config, space)
    return tuners.make_schedule_replay(
        schedule, space, copy_sources=copies, steps=replay_steps(config)
    )


def _replay_schedule(config: TuneConfig, space: tuners.SearchSpace):
    schedule = load_schedule(config.schedule)
    if schedule.hparams.shape[-1] != space.dim:
        raise ValueError(
            f"schedule={config.schedule!r} has {schedule.hparams.shape[-1]} "
            f"hyperparameters, space {config.space!r} has {space.dim}"
        )
    # Archive restores (PBT-BT) cannot be replayed as copies: replay hparams only then.
    return schedule, bool((schedule.source < config.population).all())


class _Relay:
    """The progress callback compiled into a shared program: forwards to the current run's."""

    def __init__(self) -> None:
        self.target: Callable | None = None

    def __call__(self, steps) -> None:
        if self.target is not None:
            self.target(steps)


# Per-process caches: static key -> shared pieces / compiled programs (see module doc).
_SHARED: dict[tuple, tuple] = {}
_PROGRAMS: dict[tuple, Any] = {}
_STATS = {"compiled": 0, "seconds": 0.0}
_INIT_COMPILED: set[tuple] = set()  # init keys whose jit has compiled (first call timed)
_MAX_SHARED = 16  # agents kept; a study needs one per env (and transfer env)
# Settings that change no program: the seed and schedule are arguments, the rest host-side.
_RUN_ONLY = ("seed", "schedule", "checkpoint_every", "keep_checkpoints")
_TUNER_ONLY = ("tuner", "ready_interval", "eta")


def _static_key(config: TuneConfig, progress: bool, exclude: tuple[str, ...] = ()) -> tuple:
    skip = set(_RUN_ONLY) | set(exclude) | {"coordinator_address", "num_processes", "process_id"}
    items = [(k, v) for k, v in dataclasses.asdict(config).items() if k not in skip]
    return (*items, ("progress", progress))


def compile_stats() -> dict[str, float]:
    """Programs compiled by this process's runs so far ('compiled') and their seconds."""
    return dict(_STATS)


def _compile(lowerable, *args) -> Any:
    start = time.perf_counter()
    compiled = lowerable.lower(*args).compile()
    _STATS["compiled"] += 1
    _STATS["seconds"] += time.perf_counter() - start
    return compiled


def clear_cache() -> None:
    """Forgets every shared agent and compiled program of this process."""
    _SHARED.clear()
    _PROGRAMS.clear()
    _INIT_COMPILED.clear()


def build(
    config: TuneConfig, on_progress: Callable[[jax.Array], None] | None = None
) -> Experiment:
    """Env, search space, agent, population and tuner for `config` (validated).

    Args:
      config: the run's settings.
      on_progress: host callback of the agent's compiled trial (see `make_pets`), called
        every `config.progress_every` env steps; None: no callbacks compiled in.

    Call `distributed.initialize` first in a multi-process run: this looks at the devices.
    """
    config.validate()
    progress = on_progress is not None and config.progress_every > 0
    key = _static_key(config, progress, _TUNER_ONLY)
    if key not in _SHARED:
        if len(_SHARED) >= _MAX_SHARED:
            clear_cache()  # bounds memory in long processes (a test session); rarely hit
        _SHARED[key] = _build_shared(config, progress)
    env, space, agent, population, base, mesh, relay = _SHARED[key]
    relay.target = on_progress
    tuner = make_tuner(config, space)
    replay = None
    if config.tuner == "replay":
        schedule, copies = _replay_schedule(config, space)
        replay = tuners.replay_table(schedule, copies, replay_steps(config))
    return Experiment(config, env, space, agent, population, tuner, base, mesh, replay)


def _build_shared(config: TuneConfig, progress: bool) -> tuple:
    """What every run with these static settings shares: env, space, agent, population."""
    mesh = distributed.make_mesh(config.devices)
    distributed.check_population(config.population, mesh)
    env = envs.load(config.env)
    space = tuners.get_space(config.space, env=config.env)
    overrides = {"trial_length": config.trial_length} if config.trial_length else {}
    relay = _Relay()
    if progress:
        overrides["progress_every"] = config.progress_every
    pets_config, space = hparams_lib.config_for_space(
        env, config.preset, config.trials, space, **overrides
    )
    agent = pets_lib.make_pets(env, pets_config, on_progress=relay if progress else None)
    base = presets.study_hparams(agent, config.preset)
    population = population_lib.make_population(
        agent,
        config.population,
        hparams_lib.unit_to_hparams(space, base),
        # Resolved for the whole population, not a device's share, so that each member runs
        # the same computation whatever the device count (records match across counts).
        member_batch=population_lib.resolve_member_batch(config.member_batch, config.population),
        distribute=distributed.shard_members(mesh),
    )
    return env, space, agent, population, base, mesh, relay


class RunState(NamedTuple):
    """Everything a resumed run needs (saved by the checkpointer)."""

    population: population_lib.PopulationState
    tuner: Any
    key: jax.Array
    step: jax.Array  # int32: tuner updates done
    elapsed: jax.Array  # int32: trials done by the longest-running slot


def _init_fn(exp: Experiment) -> Callable:
    """The run's first state from (seed, replay table): one jitted function per program key."""

    def init(seed: jax.Array, replay: tuners.ReplayTable | None) -> RunState:
        key = jax.random.PRNGKey(seed)
        tuner_key, pop_key, key = jax.random.split(key, 3)
        unit = exp.space.default_unit(exp.config.population)
        pop_state = exp.population.init(pop_key, unit)
        one_member = jax.tree.map(lambda x: x[0], pop_state.members)
        if replay is None:
            tuner_state = exp.tuner.init(tuner_key, one_member)
        else:
            tuner_state = exp.tuner.init(tuner_key, one_member, table=replay)
        pop_state = exp.population.apply(
            pop_state, tuner_state.decision, exp.tuner.archive(tuner_state)
        )
        return RunState(pop_state, tuner_state, key, jnp.int32(0), jnp.int32(0))

    return init


def _program_key(exp: Experiment, name: str) -> tuple:
    progress = exp.agent.config.progress_every > 0
    exclude = () if name in ("init", "update") else _TUNER_ONLY
    return (name, *_static_key(exp.config, progress, exclude))


def _init_args(exp: Experiment) -> tuple:
    return jnp.int32(exp.config.seed), exp.replay


def _init_program(exp: Experiment) -> Callable:
    """The jitted init of `exp`'s program key (a jit, not an AOT executable: `init_run` under
    `jax.eval_shape` must only trace)."""
    key = _program_key(exp, "init")
    if key not in _PROGRAMS:
        init = _init_fn(exp)
        shapes = jax.eval_shape(init, *_init_args(exp))
        _PROGRAMS[key] = jax.jit(init, out_shardings=run_shardings(exp, shapes))
    return _PROGRAMS[key]


def _compile_init(exp: Experiment) -> int:
    """Compiles `exp`'s init (by a first call) unless this process did; returns 1 if it did."""
    key = _program_key(exp, "init")
    if key in _INIT_COMPILED:
        return 0
    start = time.perf_counter()
    jax.block_until_ready(_init_program(exp)(*_init_args(exp)))
    _INIT_COMPILED.add(key)
    _STATS["compiled"] += 1
    _STATS["seconds"] += time.perf_counter() - start
    return 1


def init_run(exp: Experiment) -> RunState:
    """The run's first state, members already split over `exp.mesh` (one program per key)."""
    return _init_program(exp)(*_init_args(exp))


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
    compile_seconds: float  # spent compiling in this call (0 when every program was reused)
    compiled: int = 0  # programs compiled in this call: init, step, update (0 to 3)


def compile_programs(exp: Experiment, run: RunState | None = None) -> Programs:
    """AOT-compiles the run's init, population step and tuner update+apply, timing them.

    A program already compiled in this process for the same static settings is reused: the
    step is shared by every tuner, init and update by every run of one tuner (seeds,
    replays). `run` (shapes suffice) defaults to the shapes of `init_run(exp)`.
    """
    start = time.perf_counter()
    compiled = _compile_init(exp)
    if run is None:
        run = jax.eval_shape(_init_fn(exp), *_init_args(exp))
    shardings = run_shardings(exp, run)
    pop, rep = shardings.population, distributed.replicated(exp.mesh)
    step_key, update_key = _program_key(exp, "step"), _program_key(exp, "update")
    if step_key not in _PROGRAMS:
        active = distributed.to_global(np.ones((exp.config.population,), bool), rep)
        # Pusher needs XLA:CPU's fusion emitters off (env.compiler_options), see BUILD_NOTES.
        # Metrics come back replicated: every process reads all members' records.
        step = jax.jit(
            exp.population.step,
            in_shardings=(pop, rep),
            out_shardings=(pop, rep),
            compiler_options=exp.env.compiler_options,
        )
        _PROGRAMS[step_key] = _compile(step, run.population, active)
        compiled += 1
    if update_key not in _PROGRAMS:

        def update(key, tuner_state, pop_state):
            fitness = exp.population.fitness(pop_state)
            tuner_state, decision = exp.tuner.update(key, tuner_state, fitness, pop_state.members)
            pop_state = exp.population.apply(pop_state, decision, exp.tuner.archive(tuner_state))
            return tuner_state, pop_state, fitness

        update = jax.jit(
            update,
            in_shardings=(rep, shardings.tuner, pop),
            out_shardings=(shardings.tuner, pop, rep),
        )
        _PROGRAMS[update_key] = _compile(update, run.key, run.tuner, run.population)
        compiled += 1
    seconds = time.perf_counter() - start if compiled else 0.0
    return Programs(_PROGRAMS[step_key], _PROGRAMS[update_key], seconds, compiled)


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
