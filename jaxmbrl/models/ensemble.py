"""Probabilistic ensemble dynamics model of PETS (Chua et al., NeurIPS 2018), flax + optax.

`make_ensemble(config)` returns pure functions (init / predict / train) that jit and vmap:
every tunable hyperparameter (learning rate, weight decay, epochs, hidden width, hidden
depth, activation) is a traced value in `ModelHParams`, and every shape is fixed by the
static `EnsembleConfig`, so a population of differently-tuned models is one `jax.vmap`.
Width and depth are tuned only with `EnsembleConfig.tunable_architecture` (padded and
masked); by default the network is always full size and the masks are left out, which is
what a planner that does not tune the architecture should run.

Training (loss, bootstrap, validation split, elites) is in `jaxmbrl.models.training`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.models import network, training
from jaxmbrl.models.network import ACTIVATIONS
from jaxmbrl.models.types import (
    OPTIMIZERS,
    PETS_CHEETAH_DECAY_SCALES,
    Ensemble,
    EnsembleConfig,
    ModelHParams,
    ModelState,
)

FORWARD_DTYPES = ("float32", "bfloat16")

__all__ = [
    "FORWARD_DTYPES",
    "OPTIMIZERS",
    "PETS_CHEETAH_DECAY_SCALES",
    "Ensemble",
    "EnsembleConfig",
    "ModelHParams",
    "ModelState",
    "default_model_hparams",
    "forward_flops",
    "make_ensemble",
]


def _check_config(config: EnsembleConfig) -> None:
    for name in ("input_size", "output_size", "ensemble_size", "num_elites", "max_hidden_width"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)} must be >= 1")
    for name in ("max_hidden_layers", "batch_size", "eval_batch_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)} must be >= 1")
    if config.max_epochs < 0:
        raise ValueError(f"max_epochs={config.max_epochs} must be >= 0")
    if config.forward_dtype not in FORWARD_DTYPES:
        raise ValueError(
            f"forward_dtype={config.forward_dtype!r}; valid: {', '.join(FORWARD_DTYPES)}"
        )
    if config.num_elites > config.ensemble_size:
        raise ValueError(
            f"num_elites={config.num_elites} must be <= ensemble_size={config.ensemble_size}"
        )
    if not 0.0 <= config.validation_ratio < 1.0:
        raise ValueError(f"validation_ratio={config.validation_ratio} must be in [0, 1)")
    if config.activation is not None and config.activation not in ACTIVATIONS:
        raise ValueError(f"activation={config.activation!r} must be None or one of {ACTIVATIONS}")
    if not isinstance(config.tunable_architecture, bool):
        raise ValueError(f"tunable_architecture={config.tunable_architecture!r} must be a bool")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={config.optimizer!r} must be one of {OPTIMIZERS}")
    scales = config.layer_decay_scales
    if scales is not None and len(scales) != config.max_hidden_layers + 1:
        raise ValueError(
            f"layer_decay_scales has {len(scales)} entries; need max_hidden_layers + 1 = "
            f"{config.max_hidden_layers + 1}"
        )


def default_model_hparams(config: EnsembleConfig) -> ModelHParams:
    """The study's defaults (hpo_for_mbrl.md): lr 1e-3, wd 7.5e-5, 5 epochs, full size, swish."""
    act = 0 if config.activation is None else ACTIVATIONS.index(config.activation)
    return ModelHParams(
        learning_rate=jnp.asarray(1e-3, jnp.float32),
        weight_decay=jnp.asarray(7.5e-5, jnp.float32),
        epochs=jnp.asarray(min(5, config.max_epochs), jnp.int32),
        hidden_width=jnp.asarray(config.max_hidden_width, jnp.int32),
        hidden_layers=jnp.asarray(config.max_hidden_layers, jnp.int32),
        activation=jnp.asarray(act, jnp.int32),
    )


def forward_flops(
    config: EnsembleConfig, hparams_or_widths: ModelHParams | Sequence[int] | None = None
) -> Any:
    """FLOPs of one forward pass of ONE member for ONE row: 2 * sum(fan_in * fan_out).

    Multiply by the number of (member, row) pairs evaluated: a TS planner step over P
    particles costs P * forward_flops. `hparams_or_widths` is a ModelHParams (effective
    width/depth), a sequence of hidden-layer widths, or None for the padded maximum (what
    the padded program actually computes). Activations, biases and the log-variance clamp
    are not counted. Without `config.tunable_architecture` a ModelHParams counts the full
    network (its width and depth are ignored by the model).
    """
    if isinstance(hparams_or_widths, ModelHParams) and not config.tunable_architecture:
        hparams_or_widths = None
    if hparams_or_widths is None:
        widths = [config.max_hidden_width] * config.max_hidden_layers
    elif isinstance(hparams_or_widths, ModelHParams):
        hp = hparams_or_widths
        width = np.clip(np.asarray(hp.hidden_width), 1, config.max_hidden_width)
        layers = np.clip(np.asarray(hp.hidden_layers), 1, config.max_hidden_layers)
        flops = 2 * (
            config.input_size * width
            + (layers - 1) * width * width
            + width * 2 * config.output_size
        )
        return int(flops) if np.ndim(flops) == 0 else flops
    else:
        widths = [int(w) for w in hparams_or_widths]
    sizes = [config.input_size, *widths, 2 * config.output_size]
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def make_ensemble(config: EnsembleConfig) -> Ensemble:
    """Builds the probabilistic ensemble.

    Args:
      config: static sizes, maxima, optimizer type and activation (None: traced).

    Returns:
      An `Ensemble` of pure functions:
        init(key, hparams) -> ModelState
        predict(state, inputs [K, N, input_size], std=False) -> (mean, logvar), each
          [K, N, output_size] ((mean, std) with std=True); K == ensemble_size uses all
          members in order, else K == num_elites uses the elites.
        train(key, state, inputs [C, input_size], targets [C, output_size], num_valid,
          hparams) -> (state, metrics); trains on rows [0, num_valid) only.
    """
    _check_config(config)
    e, n_elites, h_max = config.ensemble_size, config.num_elites, config.max_hidden_width
    net = network.EnsembleMLP(
        ensemble_size=e,
        input_size=config.input_size,
        output_size=config.output_size,
        max_hidden_width=h_max,
        max_hidden_layers=config.max_hidden_layers,
        activation=config.activation,
        tunable_architecture=config.tunable_architecture,
    )
    # predict (the planner) may run its matmuls in bfloat16; training stays float32 (`net`).
    forward_net = net.clone(dtype=config.forward_dtype)
    elite_net = forward_net.clone(ensemble_size=n_elites)

    def _arch(hp: ModelHParams):
        if config.tunable_architecture:
            width = jnp.clip(jnp.asarray(hp.hidden_width, jnp.int32), 1, h_max)
            layers = jnp.clip(jnp.asarray(hp.hidden_layers, jnp.int32), 1, config.max_hidden_layers)
        else:  # constants: nothing in the program depends on them
            width = jnp.asarray(h_max, jnp.int32)
            layers = jnp.asarray(config.max_hidden_layers, jnp.int32)
        act = jnp.clip(jnp.asarray(hp.activation, jnp.int32), 0, len(ACTIVATIONS) - 1)
        return width, layers, act

    def init(key: chex.PRNGKey, hparams: ModelHParams) -> ModelState:
        width, layers, act = _arch(hparams)
        dummy = jnp.zeros((e, 1, config.input_size), jnp.float32)
        params = net.init(key, dummy, width, layers, act)["params"]
        del key
        # PETS std is 1/(2 sqrt(fan_in)) with the *active* fan-in of the hidden layers.
        rescale = jnp.sqrt(h_max / width.astype(jnp.float32))
        params = {**params, "w_hid": params["w_hid"] * rescale, "w_out": params["w_out"] * rescale}
        opt_state = training.make_optimizer(config, 1.0, {}).init(params)
        return ModelState(
            params=params,
            opt_state=opt_state,
            input_mean=jnp.zeros((config.input_size,), jnp.float32),
            input_std=jnp.ones((config.input_size,), jnp.float32),
            elites=jnp.arange(n_elites, dtype=jnp.int32),
            val_mse=jnp.zeros((e,), jnp.float32),
            hidden_width=width,
            hidden_layers=layers,
            activation=act,
        )

    def predict(
        state: ModelState, inputs: jax.Array, std: bool = False
    ) -> tuple[jax.Array, jax.Array]:
        chex.assert_rank(inputs, 3)
        k = inputs.shape[0]
        chex.assert_axis_dimension(inputs, 2, config.input_size)
        if k == e:
            params, module = state.params, forward_net
        elif k == n_elites:
            params, module = network.gather_members(state.params, state.elites), elite_net
        else:
            raise ValueError(
                f"inputs.shape[0]={k} must be ensemble_size={e} or num_elites={n_elites}"
            )
        # Normalisation folded into the first layer: O(input x width) per call instead of a
        # pass over every row (and hoisted out of a planner's loop by XLA).
        params = network.fold_normalizer(params, state.input_mean, state.input_std)
        arch = (state.hidden_width, state.hidden_layers, state.activation)
        return module.apply({"params": params}, inputs, *arch, return_std=std)

    train = training.make_train(config, net, _arch)

    return Ensemble(config=config, init=init, predict=predict, train=train)
