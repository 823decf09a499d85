"""Flat names of the PETS agent's tunable hyperparameters: ours and the study's.

Zhang et al. (AISTATS 2021), Table 1, name PETS' hyperparameters `plan_hor`, `cem_popsize`, ...;
the agent groups them as `PETSHParams(model=ModelHParams, planner=CEMHParams)`. These helpers
read, replace (jittable) and validate them by flat name.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxmbrl.agents.types import PETSConfig, PETSHParams
from jaxmbrl.models.network import ACTIVATIONS

# Flat hyperparameter name -> (group, field, kind); kind 'int' values are shape-valued
# (padded to a static maximum), 'float' values are plain traced scalars.
HPARAMS = {
    "learning_rate": ("model", "learning_rate", "float"),
    "weight_decay": ("model", "weight_decay", "float"),
    "epochs": ("model", "epochs", "int"),
    "hidden_width": ("model", "hidden_width", "int"),
    "hidden_layers": ("model", "hidden_layers", "int"),
    "activation": ("model", "activation", "int"),
    "horizon": ("planner", "horizon", "int"),
    "population": ("planner", "population", "int"),
    "iterations": ("planner", "iterations", "int"),
    "elite_ratio": ("planner", "elite_ratio", "float"),
    "alpha": ("planner", "alpha", "float"),
}
# The study's hyperparameter names (Zhang et al. 2021, Table 1) -> ours.
STUDY_NAMES = {
    "model_learning_rate": "learning_rate",
    "model_weight_decay": "weight_decay",
    "model_train_epoch": "epochs",
    "hidden_layer_width": "hidden_width",
    "num_hidden_layers": "hidden_layers",
    "activation": "activation",
    "plan_hor": "horizon",
    "cem_popsize": "population",
    "num_cem_iters": "iterations",
    "cem_elites_ratio": "elite_ratio",
    "cem_alpha": "alpha",
}


def hparam_bounds(config: PETSConfig) -> dict[str, tuple[float, float]]:
    """Valid closed range of every hyperparameter under the static maxima of `config`."""
    return {
        "learning_rate": (1e-8, 1.0),
        "weight_decay": (0.0, 1.0),
        "epochs": (1, config.max_epochs),
        # A static architecture is always the full maxima (no masks are compiled).
        "hidden_width": (
            1 if config.tunable_architecture else config.max_hidden_width,
            config.max_hidden_width,
        ),
        "hidden_layers": (
            1 if config.tunable_architecture else config.max_hidden_layers,
            config.max_hidden_layers,
        ),
        "activation": (0, len(ACTIVATIONS) - 1),
        "horizon": (1, config.max_horizon),
        "population": (1, config.max_population),
        "iterations": (1, config.max_iterations),
        "elite_ratio": (1e-6, 1.0),
        "alpha": (0.0, 0.999),
    }


def hparams_dict(hparams: PETSHParams) -> dict[str, Any]:
    """Flat {name: value} view of (possibly batched) hyperparameters."""
    return {
        name: getattr(getattr(hparams, group), field) for name, (group, field, _) in HPARAMS.items()
    }


def replace_hparams(hparams: PETSHParams, values: dict[str, Any]) -> PETSHParams:
    """Pure (jittable) replacement of flat-named values; no validation."""
    groups = {"model": hparams.model._asdict(), "planner": hparams.planner._asdict()}
    for name, value in values.items():
        group, field, kind = HPARAMS[STUDY_NAMES.get(name, name)]
        dtype = jnp.int32 if kind == "int" else jnp.float32
        value = jnp.round(value) if kind == "int" else value
        groups[group][field] = jnp.asarray(value).astype(dtype)
    return PETSHParams(
        model=type(hparams.model)(**groups["model"]),
        planner=type(hparams.planner)(**groups["planner"]),
    )


def with_overrides(agent: Any, hparams: PETSHParams, **values: Any) -> PETSHParams:
    """Returns `hparams` with flat-named `values` replaced; values may be batched arrays.

    Raises:
      ValueError: on an unknown name or a value outside `hparam_bounds(agent.config)`.
    """
    bounds = hparam_bounds(agent.config)
    for name, value in values.items():
        name = STUDY_NAMES.get(name, name)
        if name not in HPARAMS:
            raise ValueError(f"unknown hyperparameter {name!r}; valid: {', '.join(HPARAMS)}")
        low, high = bounds[name]
        array = np.asarray(value, np.float64)
        if array.size and (np.any(~np.isfinite(array)) or array.min() < low or array.max() > high):
            raise ValueError(f"{name}={value} is outside the valid range [{low}, {high}]")
    return replace_hparams(hparams, values)
