"""Probabilistic ensemble dynamics model of PETS (Chua et al., NeurIPS 2018), flax + optax.

`make_ensemble(config)` returns pure functions (init / predict / train) that jit and vmap:
every tunable hyperparameter (learning rate, weight decay, epochs, hidden width, hidden
depth, activation) is a traced value in `ModelHParams`, and every shape is fixed by the
static `EnsembleConfig`, so a population of differently-tuned models is one `jax.vmap`.
Width and depth are tuned only with `EnsembleConfig.tunable_architecture` (padded and
masked); by default the network is always full size and the masks are left out, which is
what a planner that does not tune the architecture should run.

Training follows PETS / mbrl-lib:
- loss = sum over members of mean_{batch, dim}[(mu - y)^2 exp(-logvar) + logvar]
  + 0.01 (sum max_logvar - sum min_logvar) (+ L2 weight decay for optimizer 'adam');
- inputs normalised with the mean/std of the valid rows (re-fitted on every train call);
- bootstrap: at every step each member draws its own minibatch with replacement from the
  training rows (a per-step bootstrap, equal in distribution to resampling each epoch);
- validation split by a fixed hash of the row index (stable as the buffer grows); the
  `num_elites` members with the lowest validation MSE become the elites.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmbrl.models import network
from jaxmbrl.models.network import ACTIVATIONS

OPTIMIZERS = ("adam", "adamw")
# PETS halfcheetah per-layer decays (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4) relative to 7.5e-5.
PETS_CHEETAH_DECAY_SCALES = (1 / 3, 2 / 3, 1.0, 1.0, 4 / 3)
_LOG_2PI = math.log(2.0 * math.pi)


class EnsembleConfig(NamedTuple):
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


class Ensemble(NamedTuple):
    config: EnsembleConfig
    init: Any
    predict: Any
    train: Any


def _check_config(config: EnsembleConfig) -> None:
    for name in ("input_size", "output_size", "ensemble_size", "num_elites", "max_hidden_width"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)} must be >= 1")
    for name in ("max_hidden_layers", "batch_size", "eval_batch_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)} must be >= 1")
    if config.max_epochs < 0:
        raise ValueError(f"max_epochs={config.max_epochs} must be >= 0")
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


def split_rows(capacity: int, validation_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Static train/validation split of buffer rows by a Fibonacci hash of the row index.

    Row i is held out iff frac((i + 1) * golden ratio) < validation_ratio: a fixed,
    evenly spread ~ratio fraction, so rows keep their role as the buffer fills.
    Returns sorted (train_idx, val_idx), int32.
    """
    i = np.arange(1, capacity + 1, dtype=np.uint64)
    h = (i * np.uint64(2654435769)) % np.uint64(2**32)
    is_val = h < np.uint64(int(validation_ratio * 2**32))
    return np.nonzero(~is_val)[0].astype(np.int32), np.nonzero(is_val)[0].astype(np.int32)


def _decoupled_decay(coeffs: dict) -> optax.GradientTransformation:
    def update(updates, state, params):
        out = {k: u + coeffs[k] * params[k] if k in coeffs else u for k, u in updates.items()}
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves))


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
    elite_net = net.clone(ensemble_size=n_elites)
    scales = np.asarray(config.layer_decay_scales or (1.0,) * (config.max_hidden_layers + 1))
    scales = scales.astype(np.float32)

    def _arch(hp: ModelHParams):
        if config.tunable_architecture:
            width = jnp.clip(jnp.asarray(hp.hidden_width, jnp.int32), 1, h_max)
            layers = jnp.clip(jnp.asarray(hp.hidden_layers, jnp.int32), 1, config.max_hidden_layers)
        else:  # constants: nothing in the program depends on them
            width = jnp.asarray(h_max, jnp.int32)
            layers = jnp.asarray(config.max_hidden_layers, jnp.int32)
        act = jnp.clip(jnp.asarray(hp.activation, jnp.int32), 0, len(ACTIVATIONS) - 1)
        return width, layers, act

    def _make_tx(learning_rate, decay_coeffs):
        parts = [optax.scale_by_adam()]
        if config.optimizer == "adamw":
            parts.append(_decoupled_decay(decay_coeffs))
        parts.append(optax.scale_by_learning_rate(learning_rate))
        return optax.chain(*parts)

    def init(key: chex.PRNGKey, hparams: ModelHParams) -> ModelState:
        width, layers, act = _arch(hparams)
        dummy = jnp.zeros((e, 1, config.input_size), jnp.float32)
        params = net.init(key, dummy, width, layers, act)["params"]
        del key
        # PETS std is 1/(2 sqrt(fan_in)) with the *active* fan-in of the hidden layers.
        rescale = jnp.sqrt(h_max / width.astype(jnp.float32))
        params = {**params, "w_hid": params["w_hid"] * rescale, "w_out": params["w_out"] * rescale}
        opt_state = _make_tx(1.0, {}).init(params)
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
            params, module = state.params, net
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

    def _decay_coeffs(params, weight_decay, width, layers):
        if not config.tunable_architecture:
            return {
                "w_in": weight_decay * scales[0],
                "w_hid": weight_decay * jnp.asarray(scales[1:-1]).reshape(-1, 1, 1, 1),
                "w_out": weight_decay * scales[-1],
            }
        masks = network.active_masks(params, width, layers)
        hid_scales = jnp.asarray(scales[1:-1]).reshape(-1, 1, 1, 1)
        return {
            "w_in": weight_decay * scales[0] * masks["w_in"],
            "w_hid": weight_decay * hid_scales * masks["w_hid"],
            "w_out": weight_decay * scales[-1] * masks["w_out"],
        }

    def train(
        key: chex.PRNGKey,
        state: ModelState,
        inputs: jax.Array,
        targets: jax.Array,
        num_valid: jax.Array,
        hparams: ModelHParams,
    ) -> tuple[ModelState, dict]:
        chex.assert_rank([inputs, targets], 2)
        capacity = inputs.shape[0]
        chex.assert_shape(inputs, (capacity, config.input_size))
        chex.assert_shape(targets, (capacity, config.output_size))
        width, layers, act = _arch(hparams)
        arch = (width, layers, act)
        epochs = jnp.clip(jnp.asarray(hparams.epochs, jnp.int32), 0, config.max_epochs)
        lr = jnp.asarray(hparams.learning_rate, jnp.float32)
        wd = jnp.asarray(hparams.weight_decay, jnp.float32)
        num_valid = jnp.clip(jnp.asarray(num_valid, jnp.int32), 0, capacity)

        # Input normalisation on the valid rows (rows beyond num_valid may hold anything).
        row_valid = jnp.arange(capacity) < num_valid
        x_valid = jnp.where(row_valid[:, None], inputs, 0.0)
        count = jnp.maximum(num_valid, 1).astype(jnp.float32)
        mean = jnp.sum(x_valid, axis=0) / count
        var = jnp.sum(jnp.where(row_valid[:, None], (inputs - mean) ** 2, 0.0), axis=0) / count
        std = jnp.sqrt(var)
        std = jnp.where(std < 1e-12, 1.0, std)  # constant features (as PETS)
        mean = jnp.where(num_valid > 0, mean, state.input_mean)
        std = jnp.where(num_valid > 0, std, state.input_std)

        train_np, val_np = split_rows(capacity, config.validation_ratio)
        if train_np.size == 0:  # keep gathers well-formed; index `capacity` is never valid
            train_np = np.array([capacity], np.int32)
        train_idx = jnp.asarray(train_np)
        num_train = jnp.sum(train_idx < num_valid).astype(jnp.int32)
        steps_per_epoch = (num_train + config.batch_size - 1) // config.batch_size
        total_steps = epochs * steps_per_epoch

        decay = _decay_coeffs(state.params, wd, width, layers)
        tx = _make_tx(lr, decay)

        def loss_fn(params, x, y):
            mu, logvar = net.apply({"params": params}, x, *arch)
            per_member = jnp.mean((mu - y) ** 2 * jnp.exp(-logvar) + logvar, axis=(1, 2))
            loss = jnp.sum(per_member)
            loss += 0.01 * (jnp.sum(params["max_logvar"]) - jnp.sum(params["min_logvar"]))
            if config.optimizer == "adam":  # PETS: L2 penalty (1/2 sum w^2) in the loss
                loss += sum(0.5 * jnp.sum(c * params[k] ** 2) for k, c in decay.items())
            return loss, 0.5 * (jnp.mean(per_member) + _LOG_2PI)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        loop_key, key = jax.random.split(key)
        del key

        def cond(carry):
            step, _, _, finite, _ = carry
            return (step < total_steps) & finite

        def body(carry):
            step, params, opt_state, _, sums = carry
            idx = jax.random.randint(
                jax.random.fold_in(loop_key, step), (e, config.batch_size), 0, num_train
            )
            rows = train_idx[idx]  # [E, B]: an independent bootstrap draw per member
            x = (inputs[rows] - mean) / std
            (loss, nll), grads = grad_fn(params, x, targets[rows])
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            finite = jnp.isfinite(loss) & _all_finite(params)
            first = (step < steps_per_epoch).astype(jnp.float32)
            last = (step >= total_steps - steps_per_epoch).astype(jnp.float32)
            sums = sums + jnp.stack([first * nll, first, last * nll, last])
            return step + 1, params, opt_state, finite, sums

        init_carry = (
            jnp.zeros((), jnp.int32),
            state.params,
            state.opt_state,
            jnp.array(True),
            jnp.zeros((4,), jnp.float32),
        )
        steps, params, opt_state, finite, sums = jax.lax.while_loop(cond, body, init_carry)

        # Validation error of every member on the held-out rows; if none is valid yet
        # (tiny buffers) fall back to the first rows of the buffer (training rows).
        n_eval = max(val_np.size, min(capacity, 256))
        val_pad = np.full((n_eval,), capacity, np.int32)
        val_pad[: val_np.size] = val_np
        num_val = jnp.sum(jnp.asarray(val_np) < num_valid).astype(jnp.int32)
        eval_idx = jnp.where(num_val > 0, jnp.asarray(val_pad), jnp.arange(n_eval))
        eval_mask = (eval_idx < num_valid).astype(jnp.float32)
        chunk = min(config.eval_batch_size, n_eval)
        n_chunks = -(-n_eval // chunk)
        pad = n_chunks * chunk - n_eval
        eval_idx = jnp.pad(jnp.minimum(eval_idx, capacity - 1), (0, pad))
        eval_mask = jnp.pad(eval_mask, (0, pad))

        def eval_chunk(args):
            idx, m = args
            x = jnp.broadcast_to((inputs[idx] - mean) / std, (e, chunk, config.input_size))
            mu, logvar = net.apply({"params": params}, x, *arch)
            err = (mu - targets[idx]) ** 2
            se = jnp.mean(err, axis=-1)
            nll = 0.5 * jnp.mean(err * jnp.exp(-logvar) + logvar + _LOG_2PI, axis=-1)
            # where, not multiply: rows outside the data may hold NaN (NaN * 0 = NaN).
            return jnp.sum(jnp.where(m > 0, se, 0.0), 1), jnp.sum(jnp.where(m > 0, nll, 0.0), 1)

        se_sum, nll_sum = jax.lax.map(
            eval_chunk, (eval_idx.reshape(n_chunks, chunk), eval_mask.reshape(n_chunks, chunk))
        )
        n_rows = jnp.maximum(jnp.sum(eval_mask), 1.0)
        val_mse = jnp.sum(se_sum, axis=0) / n_rows  # [E]
        val_nll = jnp.sum(nll_sum, axis=0) / n_rows
        score = jnp.where(jnp.isfinite(val_mse), val_mse, jnp.inf)
        elites = jnp.argsort(score)[:n_elites].astype(jnp.int32)

        nonfinite = ~finite | ~jnp.all(jnp.isfinite(val_mse[elites]))
        nonfinite |= ~(jnp.all(jnp.isfinite(mean)) & jnp.all(jnp.isfinite(std)))
        new_state = ModelState(
            params=params,
            opt_state=opt_state,
            input_mean=mean,
            input_std=std,
            elites=elites,
            val_mse=val_mse,
            hidden_width=width,
            hidden_layers=layers,
            activation=act,
        )
        metrics = dict(
            train_nll=sums[2] / jnp.maximum(sums[3], 1.0),
            train_nll_first_epoch=sums[0] / jnp.maximum(sums[1], 1.0),
            val_mse=jnp.mean(val_mse[elites]),
            val_nll=jnp.mean(val_nll[elites]),
            nonfinite=nonfinite.astype(jnp.int32),
            steps=steps,
            num_train=num_train,
            num_val=num_val,
        )
        return new_state, metrics

    return Ensemble(config=config, init=init, predict=predict, train=train)
