"""The study's settings: scales, sizes and equal budgets (Zhang et al., "On the Importance
of Hyperparameter Optimization for Model-based Reinforcement Learning", AISTATS 2021).

`StudyConfig` is the one source of `benchmarks/study.py`'s flags; `make_config(scale,
**given)` fills the flags left unset from the scale. Every tuner and the default get about
Hyperband's member-trials (`hyperband_member_trials`): `env_population` slots of
`env_trials` trials each. `jaxmbrl.experiments.study` runs the plan these settings make.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from jaxmbrl import envs, tuners
from jaxmbrl.agents import presets
from jaxmbrl.experiments import tuning
from jaxmbrl.experiments.hparams import config_for_space
from jaxmbrl.options import check_options, option

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
    videos: bool = option(False, "GIFs of the best, worst and default member per env.")
    publish: str = option(
        "", "Also copy report, study.json, PNGs, GIFs, members.jsonl (no checkpoints) here."
    )

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
        out, publish = os.path.abspath(self.out), os.path.abspath(self.publish or "/")
        if self.publish and os.path.commonpath([out, publish]) in (out, publish):
            raise ValueError(f"publish={self.publish} and out={self.out} must not hold each other")


_SCALE_SETTINGS = {
    # cartpole, tiny preset, 30-step trials: a few minutes on 2 CPU cores
    "ci": dict(),
    # cartpole, cpu preset (full 200-step trials), 10 trials: Hyperband (R = 10, eta = 3)
    # 74 member-trials, 7 slots; random search gives 7 configurations x 3 seeds = 21 at the
    # budgets 1, 3, 10 for Spearman. 5 x 3 x ~72 member-trials of tuning and 5 x 70 of
    # replays on a new seed, 5 x ~70 on cartpole_gear10: 31 minutes cold on 2 cores
    # (BUILD_NOTES.md, "The study on a CPU"). The transfer env is the cart-pole with a 10x
    # motor gear (other dynamics, same reward), which this preset learns in 10 trials;
    # reacher costs ~5x cart-pole's time a step here and its default does not learn.
    "cpu": dict(
        seeds=(0, 1, 2),
        transfer_seeds=(100,),
        transfer_envs=("cartpole_gear10",),
        trials=10,
        ready_interval=2,
        trial_length=0,
        preset="cpu",
        videos=True,
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
        videos=True,
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


def study_settings(config: StudyConfig) -> dict[str, Any]:
    """What the analyses need to know about the study besides its runs (and the programs
    this process compiled so far, with their seconds: `tuning.compile_stats`)."""
    return dict(
        compile=tuning.compile_stats(),
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
