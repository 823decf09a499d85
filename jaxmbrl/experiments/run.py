"""The host loop of a tuning run: records, checkpoints, resume, summary and plots.

Zhang et al. (AISTATS 2021) ran 40 TensorFlow workers under Slurm; here every compiled call
advances the whole PETS population by one trial (`Population.step`) and the tuner's update
and exploit are one more compiled call. The host writes `members.jsonl` (one line per member
per trial), checkpoints the whole run state with orbax every `checkpoint_every` tuner steps,
and at the end writes `summary.json` and `schedule.npz` (plots: `jaxmbrl.analysis`).
The members are split over the devices of every process (`experiments.distributed`); every
process runs this loop and saves its shards of each checkpoint, process 0 alone writes the
records, the summary and the schedule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxmbrl.experiments import checkpoint, distributed, faults, rundir, schedules, tuning
from jaxmbrl.experiments.config import PLACEMENT_FIELDS, TuneConfig
from jaxmbrl.experiments.progress import Progress


def check_settings(out_dir: str, config: TuneConfig) -> None:
    """A run directory belongs to one set of settings: refuse to mix two runs.

    The device count and process layout may change on resume (orbax re-shards a checkpoint
    for the new mesh), so they are not part of a run's identity.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(TuneConfig)}
    rundir.check_settings(
        out_dir,
        dataclasses.asdict(config),
        defaults,
        # None changes a result: checkpoints, progress lines, where the members run.
        ignore=("checkpoint_every", "progress_every", *PLACEMENT_FIELDS),
    )


def start(config: TuneConfig, on_progress=None) -> tuning.Experiment:
    """Joins the run's processes and builds its experiment (ValueError: a bad setting).

    Nothing is compiled yet; the device count is checked against the population.
    """
    config.validate()
    distributed.initialize(config.coordinator_address, config.num_processes, config.process_id)
    return tuning.build(config, on_progress=on_progress)


def member_records(
    exp: tuning.Experiment,
    run: tuning.RunState,
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


def _trial(step: Callable, pop_state, active):
    """One compiled trial of every member, waited for (runs in `SignalGuard.call`'s thread)."""
    pop_state, metrics = step(pop_state, active)
    return pop_state, jax.device_get(metrics)


def _finish_step(exp, programs, run_state, meta, pop_state, per_trial):
    """The tuner update after a step's trials; the records and history go into `meta`."""
    parents = np.asarray(run_state.tuner.decision.source)
    budget = len(per_trial)
    run_state = run_state._replace(population=pop_state, elapsed=run_state.elapsed + budget)
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
    run_state = tuning.RunState(pop_state, tuner_state, key, run_state.step + 1, run_state.elapsed)
    meta["schedule"].append(schedules.decision_record(tuner_state.decision))
    if meta.setdefault("rows", None) is not None:  # None: a checkpoint of an older version
        meta["rows"].extend(rows)
    return run_state, meta, rows


def run(
    config: TuneConfig,
    out_dir: str,
    log: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Runs (or resumes) a tuning run and writes its results under `out_dir`.

    Args:
      config: the run's settings.
      out_dir: results directory; a run already there with the same settings is resumed
        from its newest complete checkpoint, one with other settings is refused.
      log: progress sink (one line per tuner step).
      progress: shows env steps inside each compiled step when `config.progress_every`
        > 0 (default: plain lines through `log`, at most one every 10 s).

    Returns:
      The summary (also written to `out_dir/summary.json`).
    """
    wall_start = time.perf_counter()
    config.validate()
    distributed.initialize(config.coordinator_address, config.num_processes, config.process_id)
    primary = distributed.is_primary()
    if not primary:
        log = lambda _: None  # noqa: E731 - process 0 reports for all
    rundir.prepare_out_dir(out_dir)
    # One writer per directory (process 0 stands for all processes of a multi-process run).
    lock = faults.RunLock(out_dir, log=log) if primary else contextlib.nullcontext()
    with lock, faults.SignalGuard() as guard:
        if primary:
            check_settings(out_dir, config)
        return _run(config, out_dir, log, progress, guard, wall_start)


def _stopped(stop: faults.Interrupted, out_dir: str, run_state, detail: str, saved: int):
    """The one line a run stopped by a signal ends with."""
    step = int(run_state.step)
    where = f"{step} tuner steps ({int(run_state.elapsed)} trials) done"
    ckpt = f"checkpoint {saved} kept" if saved else "no checkpoint yet (a rerun starts afresh)"
    name = signal.Signals(stop.signum).name
    return faults.Interrupted(stop.signum, f"stopped by {name}: {out_dir}: {where}{detail}; {ckpt}")


def _run(config, out_dir, log, progress, guard, wall_start) -> dict[str, Any]:
    primary = distributed.is_primary()
    # Every process compiles the same program (callbacks included); only process 0 shows it.
    own_progress = bool(config.progress_every) and (progress is None or not primary)
    if own_progress:
        progress = Progress(log=log, bar=False)
    on_progress = progress.update if config.progress_every else None
    exp = start(config, on_progress)
    members_path = os.path.join(out_dir, "members.jsonl")
    run_state = tuning.init_run(exp)
    checkpointer = checkpoint.Checkpointer(
        os.path.join(out_dir, "checkpoints"), config.keep_checkpoints, log=log
    )
    first = schedules.decision_record(run_state.tuner.decision)
    # `rows`: every record, so that records a damaged members.jsonl lost can be rebuilt.
    meta = dict(members_lines=0, rows=[], best=None, history=[], schedule=[first])
    restored = checkpointer.restore_latest(run_state)
    if restored is not None:
        run_state, meta = restored
        log(f"resumed from tuner step {int(run_state.step)} ({meta['members_lines']} records)")
    if primary:
        rundir.restore_lines(members_path, meta["members_lines"], meta.get("rows"), log)
    saved = int(run_state.step)  # the newest step a checkpoint holds
    replicated = distributed.replicated(exp.mesh)
    local = distributed.local_members(exp.mesh, config.population)
    detail = ""
    try:
        programs = None  # a finished run (resumed to rewrite its summary) compiles nothing
        if tuning.remaining_budget(exp, run_state).max() > 0:
            programs = guard.call(tuning.compile_programs, exp, run_state)
            if programs.compiled:
                n, seconds = programs.compiled, programs.compile_seconds
                log(f"compiled {n} program(s) in {seconds:.1f} s")
            else:
                log("reused the programs compiled for an earlier run")
        while (budget := tuning.remaining_budget(exp, run_state)).max() > 0:
            step_start = time.perf_counter()
            pop_state, per_trial = run_state.population, []
            for t in range(int(budget.max())):
                active = budget > t
                label = f"step {int(run_state.step)} trial {t + 1}/{int(budget.max())}"
                guard.check()
                detail = f"; {label} abandoned"
                if on_progress is not None:
                    # Callbacks come from this process's devices only: count its own members.
                    mine = int((active & local).sum())
                    progress.start(label, mine, exp.agent.config.trial_length)
                # A signal abandons the compiled trial in flight (hours at paper scale).
                pop_state, metrics = guard.call(
                    _trial, programs.step, pop_state, distributed.to_global(active, replicated)
                )
                per_trial.append((active, metrics))
                if on_progress is not None:
                    progress.finish()
            detail = ""
            # From here to the checkpoint a signal waits: the step completes and is saved.
            run_state, meta, rows = _finish_step(
                exp, programs, run_state, meta, pop_state, per_trial
            )
            if primary:
                rundir.append_jsonl(members_path, rows)
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
                saved = int(run_state.step)
            guard.check()
    except faults.Interrupted as stop:
        if on_progress is not None:
            progress.finish()
        # The last complete step is saved unless it is; a multi-process save would need
        # every process to take part, so there the last periodic checkpoint stands.
        if int(run_state.step) > saved and jax.process_count() == 1:
            checkpointer.save(int(run_state.step), run_state, meta)
            saved = int(run_state.step)
        raise _stopped(stop, out_dir, run_state, detail, saved) from None

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
        compile_seconds=programs.compile_seconds if programs else 0.0,
        placement=distributed.placement(run_state.population, exp.mesh),
    )
    if primary:
        # summary.json last and whole: it marks a finished run (the study skips those).
        schedules.save_schedule(os.path.join(out_dir, "schedule.npz"), meta["schedule"])
        rundir.write_json(os.path.join(out_dir, "summary.json"), summary)
    if own_progress:
        progress.close()
    if guard.pending is not None:  # a signal during the last step: stop a study too
        name = signal.Signals(guard.pending).name
        raise faults.Interrupted(
            guard.pending, f"stopped by {name}: {out_dir}: the run is complete"
        )
    return summary
