"""Types of the probabilistic ensemble of PETS (Chua et al., NeurIPS 2018).

One module that both `ensemble` (init / predict) and `training` (train) import, as brax's
`types.py`, so neither imports the other's types (no cycle, none under TYPE_CHECKING).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax

OPTIMIZERS = ("adam", "adamw")
# PETS halfcheetah per-layer decays (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4) relative to 7.5e-5.
PETS_CHEETAH_DECAY_SCALES = (1 / 3, 2 / 3, 1.0, 1.0, 4 / 3)


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """Static settings (shapes and programs)."""

    input_size: int
    output_size: int
    ensemble_size: int = 5
    num_elites: int = 5
    max_hidden_width: int = 200
    max_hidden_layers: int = 4
    max_epochs: int = 5
    batch_size: int = 32
    validation_ratio: float = 0.1
    activation: str | None = "silu"  # None: traced choice (ModelHParams.activation)
    optimizer: str = "adam"  # 'adam': L2 decay in the loss (PETS); 'adamw': decoupled
    layer_decay_scales: tuple | None = None  # max_hidden_layers + 1 multipliers of weight_decay
    eval_batch_size: int = 2048  # rows per chunk when computing validation error
    # True: ModelHParams.hidden_width/hidden_layers are traced (padded to the maxima, masked).
    # False: the network is always max_hidden_width x max_hidden_layers and those two
    # hyperparameters are ignored; no masks in the program (faster planning).
    tunable_architecture: bool = False
    # Matmul operands of `predict` (the planner's forward passes): "float32" or "bfloat16"
    # (float32 accumulation). Training and validation always run in float32.
    forward_dtype: str = "float32"


class ModelHParams(NamedTuple):
    """Traced, tunable hyperparameters (jnp scalars)."""

    learning_rate: jax.Array  # float32
    weight_decay: jax.Array  # float32
    epochs: jax.Array  # int32, clipped to [0, max_epochs]
    hidden_width: jax.Array  # int32, clipped to [1, max_hidden_width] (if tunable_architecture)
    hidden_layers: jax.Array  # int32, clipped to [1, max_hidden_layers] (if tunable_architecture)
    activation: jax.Array  # int32 index into ACTIVATIONS (used only if config.activation None)


class ModelState(NamedTuple):
    params: Any
    opt_state: Any
    input_mean: jax.Array  # [input_size]
    input_std: jax.Array  # [input_size]
    elites: jax.Array  # [num_elites] int32, best validation MSE first
    val_mse: jax.Array  # [ensemble_size] validation MSE of each member at the last train
    hidden_width: jax.Array  # int32 [] architecture used by predict (the maxima if static)
    hidden_layers: jax.Array  # int32 []
    activation: jax.Array  # int32 []


class InitFn(Protocol):
    def __call__(self, key: jax.Array, hparams: ModelHParams) -> ModelState:
        """A freshly initialised ensemble (weights, optimiser state, normaliser)."""


class PredictFn(Protocol):
    def __call__(
        self, state: ModelState, inputs: jax.Array, std: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        """(mean, logvar) -- or (mean, std) -- of inputs [K, N, in] -> each [K, N, out]."""


class TrainFn(Protocol):
    def __call__(
        self,
        key: jax.Array,
        state: ModelState,
        inputs: jax.Array,
        targets: jax.Array,
        num_valid: jax.Array,
        hparams: ModelHParams,
    ) -> tuple[ModelState, dict[str, jax.Array]]:
        """The ensemble trained on rows [0, num_valid) of inputs/targets, and metrics."""


class Ensemble(NamedTuple):
    config: EnsembleConfig
    init: InitFn
    predict: PredictFn
    train: TrainFn
