"""The study of Zhang et al., "On the Importance of Hyperparameter Optimization for
Model-based Reinforcement Learning" (AISTATS 2021), as one resumable experiment.

For every env and seed it runs the four tuners (random search, Hyperband, PBT, PBT-BT) and
the untuned default PETS at (about) the same total budget in member-trials, each as an
ordinary tuning-run directory OUT/ENV/TUNER/seedK (resumable and readable alone); then it
replays each tuner's best result (the static incumbent, or the best member's hyperparameter
schedule) on new seeds and other envs (OUT/ENV/transfer/...). `run_study` returns the
manifest of run directories; `jaxmbrl.analysis.study_report.write_study` turns it into
OUT/study.json, OUT/report.md and PNGs (analysis sits above experiments).

The default is a replay (tuner 'replay') of a one-step schedule in which every member starts
fresh with the space's default hyperparameters and keeps them: the existing replay tuner,
nothing new, and the N members are N default agents with their own keys. Scales, sizes and
budgets: `jaxmbrl.experiments.study_config`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

import numpy as np

from jaxmbrl import tuners
from jaxmbrl.experiments import study_runs
from jaxmbrl.experiments.study_config import (  # noqa: F401 - the study's API, re-exported
    SCALES,
    STUDY_TUNERS,
    TUNERS,
    VALID_TUNERS,
    StudyConfig,
    env_population,
    env_trials,
    hyperband_member_trials,
    make_config,
    searched_space,
    study_settings,
    tune_settings,
)
from jaxmbrl.tuners.base import Decision


def tuning_api(settings: dict, out_dir: str | None = None, log: Callable = print):
    """The one adapter to the tuning-run API (`jaxmbrl.experiments.TuneConfig` and `run`).

    With `out_dir` None: validates `settings` and returns them as the run directory's
    config.json will hold them; else runs (or resumes) the run and returns its summary.
    """
    from jaxmbrl import experiments  # lazily: this module is part of the package

    config = experiments.TuneConfig(**settings)
    if out_dir is None:
        if config.tuner != "replay":  # a replay's schedule is written later
            config.validate()
        return dataclasses.asdict(config)
    return experiments.run(config, out_dir, log=log)


def _entry(config, env, tuner, seed, run_dir, role, schedule="", **extra) -> dict:
    replay = schedule or tuner == "default"  # the default is a replay of the defaults
    settings = tune_settings(config, env, "replay" if replay else tuner, seed, schedule)
    return dict(
        env=env,
        tuner=tuner,
        seed=seed,
        dir=run_dir,
        role=role,
        schedule=schedule,
        settings=settings,
        **extra,
    )


def plan(config: StudyConfig) -> list[dict]:
    """The tuning runs: OUT/ENV/TUNER/seedK for every env, seed and tuner."""
    out = []
    for env in config.envs:
        for seed in config.seeds:
            for tuner in config.tuners:
                run_dir = os.path.join(config.out, env, tuner, f"seed{seed}")
                out.append(_entry(config, env, tuner, seed, run_dir, "tune"))
    return out


def check_plan(config: StudyConfig, entries: list[dict]) -> None:
    """Every run's settings are valid and match any run already in its directory."""
    for e in entries:
        settings = dict(
            e["settings"], tuner=e["tuner"] if e["tuner"] in tuners.REGISTRY else "pbt", schedule=""
        )
        tuning_api(settings)
        saved_path = os.path.join(e["dir"], "config.json")
        if os.path.exists(saved_path) and not e["schedule"]:
            with open(saved_path) as f:
                saved = json.load(f)
            want = tuning_api(e["settings"])
            for k, v in want.items():
                if (
                    k not in ("checkpoint_every", "keep_checkpoints", "schedule")
                    and k in saved
                    and saved[k] != v
                ):
                    raise ValueError(
                        f"{e['dir']} holds a run with {k}={saved[k]!r}, not {v!r}: use another "
                        "--out or the same settings to resume"
                    )


def _run(entry: dict, log: Callable) -> None:
    if os.path.exists(os.path.join(entry["dir"], "summary.json")):
        log(f"{entry['dir']}: done, skipped")
        return
    log(f"{entry['dir']}: running")
    tuning_api(entry["settings"], entry["dir"], log=lambda line: log(f"  {line}"))


def _default_schedule(config: StudyConfig, env: str) -> str:
    space = searched_space(config, env)
    sched = study_runs.fixed_schedule(
        np.asarray(space.default_unit()), env_population(config, env), config.ready_interval
    )
    return study_runs.save_schedule(os.path.join(config.out, env, "schedules", "default"), sched)


def _best_schedule(config, env, target, best) -> Decision:
    return study_runs.best_schedule(
        best,
        searched_space(config, env),
        searched_space(config, target),
        env_population(config, target),
        config.ready_interval,
    )


def plan_transfer(config: StudyConfig, entries: list[dict]) -> list[dict]:
    """Replays of each tuner's best result (over seeds) on the transfer seeds, on its own
    env and on every transfer env; and the default on the same seeds and envs."""
    out, targets_used = [], set()
    for env in config.envs:
        targets = [env] + [t for t in config.transfer_envs if t != env]
        for tuner in (t for t in config.tuners if t in tuners.REGISTRY):
            bests = []
            for e in entries:
                if (e["env"], e["tuner"]) == (env, tuner):
                    b = study_runs.best_of_run(
                        study_runs.load_run(e["dir"]), tuner, env_trials(config, env)
                    )
                    if b is not None and np.isfinite(b["fitness"]):
                        bests.append(dict(b, dir=e["dir"]))
            if not bests:
                continue
            best = max(bests, key=lambda b: b["fitness"])
            for target in targets:
                targets_used.add(target)
                stem = os.path.join(config.out, env, "schedules", f"best_{tuner}.{target}")
                path = study_runs.save_schedule(stem, _best_schedule(config, env, target, best))
                name = f"{env}.{tuner}.{os.path.basename(path).split('.')[-2]}"
                for seed in config.transfer_seeds:
                    run_dir = os.path.join(config.out, target, "transfer", name, f"seed{seed}")
                    out.append(
                        _entry(
                            config,
                            target,
                            tuner,
                            seed,
                            run_dir,
                            "transfer",
                            path,
                            source_env=env,
                            source_fitness=best["final_return"],
                            source_dir=best["dir"],
                        )
                    )
    for target in sorted(targets_used):
        path = _default_schedule(config, target)
        for seed in config.transfer_seeds:
            run_dir = os.path.join(config.out, target, "transfer", "default", f"seed{seed}")
            out.append(
                _entry(
                    config,
                    target,
                    "default",
                    seed,
                    run_dir,
                    "transfer",
                    path,
                    source_env=target,
                    source_fitness=None,
                )
            )
    return out


def run_study(config: StudyConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Runs (or resumes) every tuning and transfer run of the study.

    Returns:
      The manifest (also OUT/manifest.json): one entry per run directory (env, tuner, seed,
      dir, role 'tune' or 'transfer', schedule; transfers: source_env, source_fitness,
      source_dir), what `jaxmbrl.analysis.study_report.write_study` analyses.
    """
    config.validate()
    entries = plan(config)
    check_plan(config, entries)
    os.makedirs(config.out, exist_ok=True)
    for env in config.envs:
        if "default" in config.tuners:
            path = _default_schedule(config, env)
            for e in entries:
                if (e["env"], e["tuner"]) == (env, "default"):
                    e.update(schedule=path, settings=dict(e["settings"], schedule=path))
    for e in entries:
        _run(e, log)
    transfer = plan_transfer(config, entries) if config.transfer_seeds else []
    for e in transfer:
        _run(e, log)
    manifest = [{k: v for k, v in e.items() if k != "settings"} for e in entries + transfer]
    with open(os.path.join(config.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest
