"""Preset PETS sizes: the study's defaults ('paper'), a CPU study size ('cpu') and a small
CPU smoke size ('tiny').

Study settings from Zhang et al. (AISTATS 2021) and Chua et al. (2018); see
shared/reference/hpo_for_mbrl.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxmbrl.agents.hparams import replace_hparams
from jaxmbrl.agents.types import PETSConfig, PETSHParams

PRESETS = ("tiny", "cpu", "paper")

# Trials per run and default planning horizon of the study, per env.
STUDY_TRIALS = {"half_cheetah": 300, "hopper": 300, "pusher": 100, "reacher": 100, "cartpole": 50}
STUDY_HORIZON = {"half_cheetah": 30, "hopper": 30, "pusher": 25, "reacher": 25, "cartpole": 25}

PAPER_SIZES = dict(
    ensemble_size=5,
    num_elites=5,
    max_hidden_width=200,
    max_hidden_layers=4,
    max_epochs=5,
    train_batch_size=32,
    max_horizon=30,
    max_population=500,
    max_iterations=5,
    num_particles=20,
)
# Small enough that a trial of cartpole plans in a few seconds on 2 CPU cores.
_TINY = dict(
    ensemble_size=3,
    num_elites=3,
    max_hidden_width=64,
    max_hidden_layers=3,
    max_epochs=5,
    train_batch_size=32,
    max_horizon=15,
    max_population=64,
    max_iterations=3,
    num_particles=6,
)
TINY_TRIAL_LENGTH = 100
# Full-length trials at the cheapest measured sizes at which the default PETS learns the
# study's cart-pole to >= 150 within 10 trials on seeds 0-2 (trials 5, 6, 7; ~2-2.5 CPU s a
# trial): a CEM of 25 x 3 and 40 epochs of model training per trial (DEFAULT_EPOCHS). The
# candidates tried: BUILD_NOTES.md, "The study on a CPU".
_CPU = dict(
    ensemble_size=5,
    num_elites=5,
    max_hidden_width=64,
    max_hidden_layers=3,
    max_epochs=40,
    train_batch_size=32,
    max_horizon=25,
    max_population=25,
    max_iterations=3,
    num_particles=5,
)

# Model-training epochs per trial of the default PETS: the study's 5, except at 'cpu', whose
# small model learns cart-pole within 10 trials only when trained longer (BUILD_NOTES.md,
# "The study on a CPU").
DEFAULT_EPOCHS = {"tiny": 5, "cpu": _CPU["max_epochs"], "paper": 5}


def pets_config(env, preset: str, trials: int, **overrides: Any) -> PETSConfig:
    """Static PETS config for `env` at `preset` size, with room for `trials` trials.

    Args:
      env: the environment (its name and episode length pick the study's settings).
      preset: 'tiny' (CPU smoke size), 'cpu' (the CPU study's sizes, full-length trials)
        or 'paper' (the study's default sizes).
      trials: trials per agent in the run: sets the replay capacity.
      **overrides: any PETSConfig field.

    Returns:
      The PETSConfig.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    if trials < 1:
        raise ValueError(f"trials={trials} must be >= 1")
    sizes = dict({"tiny": _TINY, "cpu": _CPU, "paper": PAPER_SIZES}[preset])
    if preset == "paper":
        sizes["max_horizon"] = max(sizes["max_horizon"], STUDY_HORIZON.get(env.name, 30))
    trial_length = env.episode_length
    if preset == "tiny":
        trial_length = min(trial_length, TINY_TRIAL_LENGTH)
    fields = dict(trial_length=trial_length, replay_capacity=trials * trial_length, **sizes)
    names = [f.name for f in dataclasses.fields(PETSConfig)]
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(
            f"unknown PETS config field(s) {sorted(unknown)}; valid: {', '.join(names)}"
        )
    fields.update(overrides)
    if "trial_length" in overrides and "replay_capacity" not in overrides:
        fields["replay_capacity"] = trials * fields["trial_length"]
    return PETSConfig(**fields)


def fit_config(config: PETSConfig, hparams: PETSHParams) -> PETSConfig:
    """`config` with its static maxima shrunk to fixed (untuned, unbatched) `hparams`, so a
    single agent compiles no padding."""
    return dataclasses.replace(
        config,
        max_horizon=int(hparams.planner.horizon),
        max_population=int(hparams.planner.population),
        max_iterations=int(hparams.planner.iterations),
        max_epochs=int(hparams.model.epochs),
        max_hidden_width=int(hparams.model.hidden_width),
        max_hidden_layers=int(hparams.model.hidden_layers),
    )


def study_hparams(agent, preset: str = "paper") -> PETSHParams:
    """The study's default hyperparameters for the agent's env and `preset`, within its
    maxima (the default's model-training epochs are the preset's: `DEFAULT_EPOCHS`)."""
    horizon = min(STUDY_HORIZON.get(agent.env.name, 30), agent.config.max_horizon)
    epochs = min(DEFAULT_EPOCHS[preset], agent.config.max_epochs)
    return replace_hparams(agent.default_hparams, {"horizon": horizon, "epochs": epochs})
