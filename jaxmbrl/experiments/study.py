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
nothing new, and the N members are N default agents with their own keys.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxmbrl import envs, tuners
from jaxmbrl.agents import presets
from jaxmbrl.experiments import study_runs
from jaxmbrl.experiments.hparams import config_for_space
from jaxmbrl.options import check_options, option
from jaxmbrl.tuners.base import Decision

TUNERS = ("random_search", "hyperband", "pbt", "pbt_bt")  # the paper's: the default arms
STUDY_TUNERS = TUNERS + ("default",)
# Accepted by --tuners: every registered tuner (pb2 and bohb are extra arms) and the default.
VALID_TUNERS = tuners.TUNERS + ("default",)
SCALES = ("ci", "cpu", "paper")
_SPACES = tuners.SPACE_NAMES  # the field `tuners` shadows the module in the class body


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Settings of the study (`benchmarks/study.py`'s flags are generated from these fields;
    a flag left unset takes its value from `--scale`, see `make_config`)."""

    scale: str = option("ci", "Sizes and budgets: ci | cpu | paper.", choices=SCALES)
    out: str = option("runs/study", "Output directory (runs, report.md, study.json, PNGs).")
    envs: tuple[str, ...] = option(("cartpole",), "Environments tuned on.")
    tuners: tuple[str, ...] = option(STUDY_TUNERS, "Subset of " + ",".join(VALID_TUNERS) + ".")
    seeds: tuple[int, ...] = option((0, 1), "Tuning seeds.")
    transfer_seeds: tuple[int, ...] = option((100,), "New seeds the best results replay on.")
    transfer_envs: tuple[str, ...] = option((), "Other envs the best results replay on.")
    population: int = option(0, "Slots; 0: Hyperband's member-trials / trials.", low=0)
    trials: int = option(6, "Trials per member (Hyperband's max); 0: the study's.", low=0)
    ready_interval: int = option(2, "Trials per tuner update (PBT step).", low=1)
    trial_length: int = option(30, "Env steps per trial; 0: the preset's.", low=0)
    preset: str = option("tiny", "Model/planner sizes.", choices=presets.PRESETS)
    space: str = option("planning", "Search space.", choices=_SPACES)
    eta: int = option(3, "Hyperband's halving rate eta.", low=2)
    member_batch: int = option(0, "Members per vmap; 0: auto.", low=0)
    confidence: float = option(0.95, "Bootstrap confidence level.", low=0.5, high=0.999)
    resamples: int = option(9999, "Bootstrap resamples.", low=100)

    def validate(self) -> None:
        """Raises ValueError with one line naming the bad value and the valid choices."""
        check_options(self)
        for name, valid in (
            ("envs", envs.ALL_ENVS),
            ("transfer_envs", envs.ALL_ENVS),
            ("tuners", VALID_TUNERS),
        ):
            for value in getattr(self, name):
                if value not in valid:
                    raise ValueError(f"unknown {name} entry {value!r}; valid: {', '.join(valid)}")
        if not self.envs or not self.tuners or not self.seeds:
            raise ValueError("envs, tuners and seeds must each name at least one entry")
        if set(self.seeds) & set(self.transfer_seeds):
            raise ValueError(f"transfer_seeds {self.transfer_seeds} must differ from seeds")


_SCALE_SETTINGS = {
    # cartpole, tiny preset, 30-step trials: a few minutes on 2 CPU cores
    "ci": dict(),
    # cartpole, tiny preset, 100-step trials, 18 trials (Hyperband 138 member-trials, 8 slots)
    "cpu": dict(
        seeds=(0, 1, 2),
        transfer_seeds=(100, 101),
        transfer_envs=("reacher",),
        trials=18,
        ready_interval=3,
        trial_length=0,
    ),
    # the study's envs, sizes and trials per env (50-300), 5-trial PBT steps
    "paper": dict(
        envs=tuple(presets.STUDY_TRIALS),
        seeds=(0, 1, 2),
        transfer_seeds=(100, 101, 102),
        transfer_envs=("hopper", "reacher"),
        trials=0,
        ready_interval=5,
        trial_length=0,
        preset="paper",
    ),
}


def make_config(scale: str = "ci", **overrides: Any) -> StudyConfig:
    """The scale's settings with `overrides` on top, validated."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    config = StudyConfig(scale=scale, **{**_SCALE_SETTINGS[scale], **overrides})
    config.validate()
    return config


def hyperband_member_trials(trials: int, eta: int) -> int:
    """Member-trials of one Hyperband iteration when every promotion continues training."""
    total = 0
    for bracket in tuners.brackets(trials, eta):
        prev = 0
        for n, r in bracket:
            total, prev = total + n * (r - prev), r
    return total


def env_trials(config: StudyConfig, env: str) -> int:
    return config.trials or presets.STUDY_TRIALS[env]


def env_population(config: StudyConfig, env: str) -> int:
    """Slots per run: given, or matched to Hyperband's budget (same member-trials)."""
    if config.population:
        return config.population
    trials = env_trials(config, env)
    return max(2, round(hyperband_member_trials(trials, config.eta) / trials))


def tune_settings(config: StudyConfig, env: str, tuner: str, seed: int, schedule: str = ""):
    """Settings of one tuning run (TuneConfig fields, the study's tuner names)."""
    return dict(
        env=env,
        tuner=tuner,
        population=env_population(config, env),
        trials=env_trials(config, env),
        ready_interval=config.ready_interval,
        space=config.space,
        seed=seed,
        preset=config.preset,
        trial_length=config.trial_length,
        eta=config.eta,
        schedule=schedule,
        member_batch=config.member_batch,
    )


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


def searched_space(config: StudyConfig, env: str) -> tuners.SearchSpace:
    """The space a run on `env` searches (the preset scales shape-valued ranges)."""
    overrides = {"trial_length": config.trial_length} if config.trial_length else {}
    return config_for_space(
        envs.load(env),
        config.preset,
        env_trials(config, env),
        tuners.get_space(config.space, env=env),
        **overrides,
    )[1]


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


def study_settings(config: StudyConfig) -> dict[str, Any]:
    """What the analyses need to know about the study besides its runs."""
    return dict(
        config=dataclasses.asdict(config),
        eta=config.eta,
        confidence=config.confidence,
        resamples=config.resamples,
        trials={env: env_trials(config, env) for env in config.envs},
        populations={env: env_population(config, env) for env in config.envs},
        hyperband_member_trials={
            env: hyperband_member_trials(env_trials(config, env), config.eta) for env in config.envs
        },
    )
