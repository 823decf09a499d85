"""The bridge from a tuner's search space to the PETS agent: static maxima and hyperparameters.

Zhang et al. (AISTATS 2021) search PETS' hyperparameters by their own names (`plan_hor`,
`cem_popsize`, ...) in ranges that fix shapes (a planning space reaches a horizon of 60 and
a CEM population of 700). `config_for_space` compiles the agent at the space's maxima,
`unit_to_hparams` maps the tuner's unit cube to the agent's traced hyperparameters. It lives
here, above both agents/ and tuners/, so that neither imports the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxmbrl.agents import presets
from jaxmbrl.agents.hparams import replace_hparams
from jaxmbrl.agents.types import PETSConfig, PETSHParams
from jaxmbrl.models.network import ACTIVATIONS
from jaxmbrl.tuners.space import SearchSpace

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
    config = presets.pets_config(env, preset, trials, **overrides)
    if any(p.name == "activation" for p in space.params):
        config = dataclasses.replace(config, activation=None)  # traced categorical
    if any(p.name in ("hidden_layer_width", "num_hidden_layers") for p in space.params):
        config = dataclasses.replace(config, tunable_architecture=True)
    params = []
    for p in space.params:
        field = _SHAPE_MAXIMA.get(p.name)
        if field is None:
            params.append(p)
        elif preset == "paper" and field not in overrides:
            config = dataclasses.replace(config, **{field: max(getattr(config, field), p.high)})
            params.append(p)
        else:
            top = getattr(config, field)
            low = min(top, max(1, round(p.low * top / p.high))) if p.high > top else p.low
            high = min(p.high, top)
            default = None if p.default is None else min(max(p.default, low), high)
            if low == high:  # a range that collapsed: nothing left to tune
                config = dataclasses.replace(config, **{field: high})
                continue
            params.append(type(p)(p.name, low, high, log=p.log, default=default))
    return config, SearchSpace(tuple(params))


def unit_to_hparams(space: SearchSpace, base: PETSHParams) -> Callable[[jax.Array], PETSHParams]:
    """Jittable map from unit-cube hyperparameters [N, D] to PETSHParams with axis N."""
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
