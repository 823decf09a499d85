"""Agents: PETS (Chua et al. 2018) as pure functions, its hyperparameters and preset sizes."""

from jaxmbrl.agents.hparams import (
    HPARAMS,
    STUDY_NAMES,
    hparam_bounds,
    hparams_dict,
    replace_hparams,
    with_overrides,
)
from jaxmbrl.agents.pets import make_pets
from jaxmbrl.agents.types import PETS, AgentState, PETSConfig, PETSHParams

__all__ = [
    "HPARAMS",
    "PETS",
    "STUDY_NAMES",
    "AgentState",
    "PETSConfig",
    "PETSHParams",
    "hparam_bounds",
    "hparams_dict",
    "make_pets",
    "replace_hparams",
    "with_overrides",
]
