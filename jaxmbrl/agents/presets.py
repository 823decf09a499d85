"""Preset PETS sizes: the study's defaults ('paper') and a small CPU smoke size ('tiny').

Study settings from Zhang et al. (AISTATS 2021) and Chua et al. (2018); see
shared/reference/hpo_for_mbrl.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmbrl.agents.pets import PETSConfig, PETSHParams, replace_hparams
from jaxmbrl.tuners.space import SearchSpace

PRESETS = ("tiny", "paper")

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


def pets_config(env, preset: str, trials: int, **overrides: Any) -> PETSConfig:
    """Static PETS config for `env` at `preset` size, with room for `trials` trials.

    Args:
      env: the environment (its name and episode length pick the study's settings).
      preset: 'tiny' (CPU smoke size) or 'paper' (the study's default sizes).
      trials: trials per agent in the run: sets the replay capacity.
      **overrides: any PETSConfig field.

    Returns:
      The PETSConfig.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    if trials < 1:
        raise ValueError(f"trials={trials} must be >= 1")
    sizes = dict(_TINY if preset == "tiny" else PAPER_SIZES)
    if preset == "paper":
        sizes["max_horizon"] = max(sizes["max_horizon"], STUDY_HORIZON.get(env.name, 30))
    trial_length = env.episode_length
    if preset == "tiny":
        trial_length = min(trial_length, TINY_TRIAL_LENGTH)
    fields = dict(trial_length=trial_length, replay_capacity=trials * trial_length, **sizes)
    unknown = set(overrides) - set(PETSConfig._fields)
    if unknown:
        raise ValueError(
            f"unknown PETS config field(s) {sorted(unknown)}; "
            f"valid: {', '.join(PETSConfig._fields)}"
        )
    fields.update(overrides)
    if "trial_length" in overrides and "replay_capacity" not in overrides:
        fields["replay_capacity"] = trials * fields["trial_length"]
    return PETSConfig(**fields)


# Search-space parameter (the study's names) -> the PETSConfig field bounding it.
_SHAPE_MAXIMA = {
    "plan_hor": "max_horizon",
    "cem_popsize": "max_population",
    "num_cem_iters": "max_iterations",
    "model_train_epoch": "max_epochs",
    "hidden_layer_width": "max_hidden_width",
    "num_hidden_layers": "max_hidden_layers",
}
# The study's activation names -> index into jaxmbrl.models.ACTIVATIONS.
_ACTIVATION_NAMES = {
    "swish": "silu",
    "silu": "silu",
    "relu": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
}


def config_for_space(
    env, preset: str, trials: int, space: SearchSpace, **overrides: Any
) -> tuple[PETSConfig, SearchSpace]:
    """The static PETS config for tuning `space`, and the space as it will be searched.

    'paper': the static maxima come from the space (a planning space compiles a horizon of
    60 and a CEM population of 700), so a small space compiles a small program. 'tiny':
    the space's shape-valued ranges are scaled down to the tiny maxima.
    """
    config = pets_config(env, preset, trials, **overrides)
    if any(p.name == "activation" for p in space.params):
        config = config._replace(activation=None)  # traced categorical
    if any(p.name in ("hidden_layer_width", "num_hidden_layers") for p in space.params):
        config = config._replace(tunable_architecture=True)
    params = []
    for p in space.params:
        field = _SHAPE_MAXIMA.get(p.name)
        if field is None:
            params.append(p)
        elif preset == "paper" and field not in overrides:
            config = config._replace(**{field: max(getattr(config, field), p.high)})
            params.append(p)
        else:
            top = getattr(config, field)
            low = min(top, max(1, round(p.low * top / p.high))) if p.high > top else p.low
            high = min(p.high, top)
            default = None if p.default is None else min(max(p.default, low), high)
            if low == high:  # a range that collapsed: nothing left to tune
                config = config._replace(**{field: high})
                continue
            params.append(type(p)(p.name, low, high, log=p.log, default=default))
    return config, SearchSpace(tuple(params))


def unit_to_hparams(space: SearchSpace, base: PETSHParams) -> Callable[[jax.Array], PETSHParams]:
    """Jittable map from unit-cube hyperparameters [N, D] to PETSHParams with axis N."""
    from jaxmbrl.models import ACTIVATIONS

    activation_index = None
    for p in space.params:
        if p.name == "activation":
            activation_index = jnp.asarray(
                [ACTIVATIONS.index(_ACTIVATION_NAMES[c]) for c in p.choices], jnp.int32
            )

    def to_hparams(unit: jax.Array) -> PETSHParams:
        values = space.from_unit(unit)
        if activation_index is not None:
            values["activation"] = activation_index[values["activation"]]
        n = unit.shape[0]
        batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), base)
        return replace_hparams(batched, values)

    return to_hparams


def fit_config(config: PETSConfig, hparams: PETSHParams) -> PETSConfig:
    """`config` with its static maxima shrunk to fixed (untuned, unbatched) `hparams`, so a
    single agent compiles no padding."""
    return config._replace(
        max_horizon=int(hparams.planner.horizon),
        max_population=int(hparams.planner.population),
        max_iterations=int(hparams.planner.iterations),
        max_epochs=int(hparams.model.epochs),
        max_hidden_width=int(hparams.model.hidden_width),
        max_hidden_layers=int(hparams.model.hidden_layers),
    )


def study_hparams(agent) -> PETSHParams:
    """The study's default hyperparameters for the agent's env, within its maxima."""
    horizon = min(STUDY_HORIZON.get(agent.env.name, 30), agent.config.max_horizon)
    return replace_hparams(agent.default_hparams, {"horizon": horizon})
