"""Dynamics models: the probabilistic ensemble of PETS (Chua et al., NeurIPS 2018)."""

from jaxmbrl.models.ensemble import (
    ACTIVATIONS,
    OPTIMIZERS,
    PETS_CHEETAH_DECAY_SCALES,
    Ensemble,
    EnsembleConfig,
    ModelHParams,
    ModelState,
    default_model_hparams,
    forward_flops,
    make_ensemble,
)
from jaxmbrl.models.network import EnsembleMLP
from jaxmbrl.models.training import make_optimizer, make_train, split_rows

__all__ = [
    "ACTIVATIONS",
    "OPTIMIZERS",
    "PETS_CHEETAH_DECAY_SCALES",
    "Ensemble",
    "EnsembleConfig",
    "EnsembleMLP",
    "ModelHParams",
    "ModelState",
    "default_model_hparams",
    "forward_flops",
    "make_ensemble",
    "make_optimizer",
    "make_train",
    "split_rows",
]
