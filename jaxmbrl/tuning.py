"""A tuning run: a PETS population (one compiled program) driven by one of the study's tuners.

Zhang et al., "On the Importance of Hyperparameter Optimization for Model-based
Reinforcement Learning", AISTATS 2021: random search, Hyperband, PBT and PBT-BT tuning PETS.

The host loop is thin: every compiled call advances the whole population by one trial
(`Population.step`), the tuner's `update` and the exploit/restart (`Population.apply`) are
jitted too. The host writes `members.jsonl` (one line per member per trial), checkpoints
the whole run state with orbax every `checkpoint_every` tuner steps, and at the end writes
`summary.json` and the plots.
"""

from __future__ import annotations

import dataclasses
import json
import os
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

TUNERS = ("random", "hyperband", "pbt", "pbt_bt", "replay")
SCHEDULE_FIELDS = tuners.Decision._fields


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """Settings of one tuning run (the binary's flags)."""

    env: str = "cartpole"
    tuner: str = "pbt"
    population: int = 4
    trials: int = 8
    ready_interval: int = 2
    space: str = "planning"
    seed: int = 0
    preset: str = "tiny"
    trial_length: int = 0  # env steps per trial; 0: the preset's
    eta: int = 3
    schedule: str = ""  # tuner 'replay': a schedule.npz written by an earlier run
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    member_batch: int = 0  # members per vmap; 0: auto (population.resolve_member_batch)

    def validate(self) -> None:
        """Raises ValueError with one line naming the bad value and the valid range."""
        if self.env not in envs.ALL_ENVS:
            raise ValueError(f"unknown env {self.env!r}; valid: {', '.join(envs.ALL_ENVS)}")
        if self.tuner not in TUNERS:
            raise ValueError(f"unknown tuner {self.tuner!r}; valid: {', '.join(TUNERS)}")
        if self.space not in tuners.SPACE_NAMES:
            raise ValueError(
                f"unknown space {self.space!r}; valid: {', '.join(tuners.SPACE_NAMES)}"
            )
        if self.preset not in presets.PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(presets.PRESETS)}")
        if self.trial_length < 0:
            raise ValueError(f"trial_length={self.trial_length} must be >= 0 (0: preset's)")
        for name, low in (
            ("population", 1),
            ("trials", 1),
            ("ready_interval", 1),
            ("checkpoint_every", 1),
            ("keep_checkpoints", 1),
            ("eta", 2),
            ("member_batch", 0),
        ):
            value = getattr(self, name)
            if value < low:
                raise ValueError(f"{name}={value} must be >= {low}")
        if self.ready_interval > self.trials:
            raise ValueError(
                f"ready_interval={self.ready_interval} must be <= trials={self.trials}"
            )
        if (self.tuner == "replay") != bool(self.schedule):
            raise ValueError(
                f"schedule={self.schedule!r}: a schedule is needed by, and only by, --tuner=replay"
            )
        if self.schedule:
            population = load_schedule(self.schedule).source.shape[1]
            if population != self.population:
                raise ValueError(
                    f"population={self.population} differs from the schedule's {population} "
                    f"members ({self.schedule})"
                )
        if self.tuner == "pbt_bt" and self.population < 2:
            raise ValueError(f"population={self.population} must be >= 2 for pbt_bt")


class Experiment(NamedTuple):
    config: TuneConfig
    env: Any
    space: tuners.SearchSpace
    agent: pets_lib.PETS
    population: population_lib.Population
    tuner: tuners.Tuner
    base_hparams: pets_lib.PETSHParams


def load_schedule(path: str) -> tuners.Decision:
    """A recorded schedule (`schedule.npz` of a run): Decision with leaves [T + 1, N, ...]."""
    try:
        with np.load(path) as data:
            return tuners.Decision(**{k: data[k] for k in SCHEDULE_FIELDS})
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"schedule={path!r} is not a readable schedule.npz ({error})") from None


def save_schedule(path: str, decisions: list[dict]) -> None:
    np.savez(path, **{k: np.stack([np.asarray(d[k]) for d in decisions]) for k in SCHEDULE_FIELDS})


def make_tuner(config: TuneConfig, space: tuners.SearchSpace) -> tuners.Tuner:
    n, step = config.population, config.ready_interval
    if config.tuner == "replay":
        schedule = load_schedule(config.schedule)
        if schedule.hparams.shape[-1] != space.dim:
            raise ValueError(
                f"schedule={config.schedule!r} has {schedule.hparams.shape[-1]} "
                f"hyperparameters, space {config.space!r} has {space.dim}"
            )
        # Archive restores (PBT-BT) cannot be replayed as copies: replay hparams only then.
        copies = bool((schedule.source < n).all())
        return tuners.make_schedule_replay(schedule, space, copy_sources=copies)
    if config.tuner == "random":
        return tuners.random_search(space, n, step_trials=step)
    if config.tuner == "hyperband":
        return tuners.hyperband(space, n, max_budget=config.trials, eta=config.eta)
    if config.tuner == "pbt":
        return tuners.pbt(space, n, step_trials=step, first_step_trials=step)
    # The study checks for backtracking every 30 of its 60 updates: keep that ratio.
    updates = -(-config.trials // step)
    return tuners.pbt_bt(
        space, n, step_trials=step, first_step_trials=step, delta_t=max(1, updates // 2)
    )


def build(config: TuneConfig) -> Experiment:
    """Env, search space, agent, population and tuner for `config` (validated)."""
    config.validate()
    env = envs.load(config.env)
    space = tuners.get_space(config.space, env=config.env)
    overrides = {"trial_length": config.trial_length} if config.trial_length else {}
    pets_config, space = presets.config_for_space(
        env, config.preset, config.trials, space, **overrides
    )
    agent = pets_lib.make_pets(env, pets_config)
    base = presets.study_hparams(agent)
    population = population_lib.make_population(
        agent,
        config.population,
        presets.unit_to_hparams(space, base),
        member_batch=population_lib.resolve_member_batch(config.member_batch, config.population),
    )
    return Experiment(config, env, space, agent, population, make_tuner(config, space), base)


class RunState(NamedTuple):
    """Everything a resumed run needs (saved by the checkpointer)."""

    population: population_lib.PopulationState
    tuner: Any
    key: jax.Array
    step: jax.Array  # int32: tuner updates done
    elapsed: jax.Array  # int32: trials done by the longest-running slot


def init_run(exp: Experiment) -> RunState:
    key = jax.random.PRNGKey(exp.config.seed)
    tuner_key, pop_key, key = jax.random.split(key, 3)
    pop_state = jax.jit(exp.population.init)(pop_key, exp.space.default_unit(exp.config.population))
    one_member = jax.tree.map(lambda x: x[0], pop_state.members)
    tuner_state = jax.jit(exp.tuner.init)(tuner_key, one_member)
    pop_state = jax.jit(exp.population.apply)(
        pop_state, tuner_state.decision, exp.tuner.archive(tuner_state)
    )
    return RunState(pop_state, tuner_state, key, jnp.int32(0), jnp.int32(0))


class Programs(NamedTuple):
    step: Callable
    update: Callable
    compile_seconds: float


def compile_programs(exp: Experiment, run: RunState) -> Programs:
    """AOT-compiles the population step and the tuner update+apply, timing compilation."""
    start = time.perf_counter()
    active = jnp.ones((exp.config.population,), bool)
    # Pusher needs XLA:CPU's fusion emitters off (env.compiler_options), see BUILD_NOTES.
    options = exp.env.compiler_options
    step = jax.jit(exp.population.step, compiler_options=options)
    step = step.lower(run.population, active).compile()

    def update(key, tuner_state, pop_state):
        fitness = exp.population.fitness(pop_state)
        tuner_state, decision = exp.tuner.update(key, tuner_state, fitness, pop_state.members)
        pop_state = exp.population.apply(pop_state, decision, exp.tuner.archive(tuner_state))
        return tuner_state, pop_state, fitness

    update = jax.jit(update).lower(run.key, run.tuner, run.population).compile()
    return Programs(step, update, time.perf_counter() - start)


def remaining_budget(exp: Experiment, run: RunState) -> np.ndarray:
    """Trials each slot runs before the next update; all zero when the run is over."""
    budget = np.asarray(run.tuner.decision.budget)
    if exp.config.tuner == "hyperband":
        if bool(tuners.is_done(run.tuner)):
            return np.zeros_like(budget)
    else:
        budget = np.minimum(budget, exp.config.trials - int(run.elapsed))
    return np.maximum(budget, 0)


def member_records(
    exp: Experiment,
    run: RunState,
    metrics_per_trial: list[dict],
    parents: np.ndarray,
    hparams: list[dict[str, Any]],
) -> list[dict]:
    """One JSON-able record per member per trial of the last tuner step."""
    rows = []
    for t, (active, metrics) in enumerate(metrics_per_trial):
        for i in range(exp.config.population):
            if not active[i]:
                continue
            rows.append(
                dict(
                    member=i,
                    step=int(run.step),
                    trial=int(run.elapsed) - len(metrics_per_trial) + t + 1,
                    trial_return=float(metrics["trial_return"][i]),
                    diverged=bool(metrics["diverged"][i] > 0.5),
                    hparams=hparams[i],
                    parent=int(parents[i]),
                )
            )
    return rows


def write_jsonl(path: str, rows: list[dict]) -> None:
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def prepare_out_dir(out_dir: str) -> None:
    """Creates `out_dir` and checks that files can be written there (ValueError if not)."""
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"--out={out_dir} is not a writable directory ({error.strerror})"
        ) from None


def _check_settings(out_dir: str, config: TuneConfig) -> None:
    """A run directory belongs to one set of settings: refuse to mix two runs."""
    path = os.path.join(out_dir, "config.json")
    settings = dataclasses.asdict(config)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        # A setting newer than the saved run counts as its default.
        defaults = {f.name: f.default for f in dataclasses.fields(TuneConfig)}
        saved = {k: saved.get(k, defaults[k]) for k in settings}
        diff = {
            k: (saved[k], v)
            for k, v in settings.items()
            if k != "checkpoint_every" and saved[k] != v
        }
        if diff:
            name, (old, new) = sorted(diff.items())[0]
            raise ValueError(
                f"--out={out_dir} holds a run with {name}={old!r}, not {new!r}: "
                "use another --out or the same settings to resume"
            )
    else:
        with open(path, "w") as f:
            json.dump(settings, f, indent=2)


def _truncate_lines(path: str, lines: int) -> None:
    """Keeps the first `lines` lines of `path` (those written before the checkpoint)."""
    if not os.path.exists(path):
        open(path, "w").close()
        return
    with open(path) as f:
        kept = f.readlines()[:lines]
    with open(path, "w") as f:
        f.writelines(kept)


def run(config: TuneConfig, out_dir: str, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs (or resumes) a tuning run and writes its results under `out_dir`.

    Args:
      config: the run's settings.
      out_dir: results directory; a run already there with the same settings is resumed
        from its newest complete checkpoint, one with other settings is refused.
      log: progress sink (one line per tuner step).

    Returns:
      The summary (also written to `out_dir/summary.json`).
    """
    from jaxmbrl import checkpoint
    from jaxmbrl.analysis import plots

    wall_start = time.perf_counter()
    exp = build(config)
    prepare_out_dir(out_dir)
    _check_settings(out_dir, config)
    members_path = os.path.join(out_dir, "members.jsonl")
    run_state = init_run(exp)
    checkpointer = checkpoint.Checkpointer(
        os.path.join(out_dir, "checkpoints"), config.keep_checkpoints, log=log
    )
    decision_record = lambda d: {k: np.asarray(v).tolist() for k, v in d._asdict().items()}  # noqa: E731
    meta = dict(
        members_lines=0, best=None, history=[], schedule=[decision_record(run_state.tuner.decision)]
    )
    restored = checkpointer.restore_latest(run_state)
    if restored is not None:
        run_state, meta = restored
        log(f"resumed from tuner step {int(run_state.step)} ({meta['members_lines']} records)")
    _truncate_lines(members_path, meta["members_lines"])
    programs = compile_programs(exp, run_state)
    log(f"compiled population step and tuner update in {programs.compile_seconds:.1f} s")

    while (budget := remaining_budget(exp, run_state)).max() > 0:
        step_start = time.perf_counter()
        pop_state, per_trial = run_state.population, []
        for t in range(int(budget.max())):
            active = budget > t
            pop_state, metrics = programs.step(pop_state, jnp.asarray(active))
            per_trial.append((active, jax.device_get(metrics)))
        parents = np.asarray(run_state.tuner.decision.source)
        run_state = run_state._replace(
            population=pop_state, elapsed=run_state.elapsed + int(budget.max())
        )
        hparams = exp.space.to_dicts(np.asarray(run_state.tuner.decision.hparams))
        rows = member_records(exp, run_state, per_trial, parents, hparams)
        key, update_key = jax.random.split(run_state.key)
        tuner_state, pop_state, fitness = programs.update(
            update_key, run_state.tuner, run_state.population
        )
        fitness = np.asarray(fitness)
        fitness = np.where(np.isfinite(fitness), fitness, -np.inf)
        best = int(np.argmax(fitness))
        if meta["best"] is None or fitness[best] > meta["best"]["fitness"]:
            meta["best"] = dict(
                member=best,
                fitness=float(fitness[best]),
                step=int(run_state.step),
                hparams=hparams[best],
            )
        finite = fitness[np.isfinite(fitness)]
        meta["history"].append(
            dict(
                step=int(run_state.step),
                trials=int(run_state.elapsed),
                mean_fitness=float(finite.mean()) if finite.size else None,
                best_fitness=float(finite.max()) if finite.size else None,
                failed=int((~np.isfinite(fitness)).sum()),
            )
        )
        run_state = RunState(pop_state, tuner_state, key, run_state.step + 1, run_state.elapsed)
        meta["schedule"].append(decision_record(tuner_state.decision))
        write_jsonl(members_path, rows)
        meta["members_lines"] += len(rows)
        h = meta["history"][-1]
        num = lambda x: "     n/a" if x is None else f"{x:8.2f}"  # noqa: E731
        log(
            f"step {h['step']:3d}  trials {h['trials']:4d}  best {num(h['best_fitness'])}  "
            f"mean {num(h['mean_fitness'])}  failed {h['failed']}  "
            f"{time.perf_counter() - step_start:.1f} s"
        )
        if int(run_state.step) % config.checkpoint_every == 0:
            checkpointer.save(int(run_state.step), run_state, meta)

    summary = dict(
        env=config.env,
        tuner=config.tuner,
        population=config.population,
        trials=config.trials,
        space=config.space,
        preset=config.preset,
        seed=config.seed,
        tuner_steps=int(run_state.step),
        best_return=meta["best"]["fitness"] if meta["best"] else None,
        best_member=meta["best"]["member"] if meta["best"] else None,
        best_hparams=meta["best"]["hparams"] if meta["best"] else None,
        first_step=meta["history"][0] if meta["history"] else None,
        last_step=meta["history"][-1] if meta["history"] else None,
        wall_seconds=time.perf_counter() - wall_start,
        compile_seconds=programs.compile_seconds,
    )
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    save_schedule(os.path.join(out_dir, "schedule.npz"), meta["schedule"])
    plots.plot_run(members_path, out_dir)
    return summary
