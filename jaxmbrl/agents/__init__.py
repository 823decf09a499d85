"""Agents: PETS (Chua et al. 2018) as pure functions, and its preset sizes."""

from jaxmbrl.agents.pets import (
    HPARAMS,
    PETS,
    STUDY_NAMES,
    AgentState,
    PETSConfig,
    PETSHParams,
    hparam_bounds,
    hparams_dict,
    make_pets,
    replace_hparams,
    with_overrides,
)

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
