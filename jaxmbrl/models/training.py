"""Training of the probabilistic ensemble of PETS (Chua et al., NeurIPS 2018), optax.

Training follows PETS / mbrl-lib:
- loss = sum over members of mean_{batch, dim}[(mu - y)^2 exp(-logvar) + logvar]
  + 0.01 (sum max_logvar - sum min_logvar) (+ L2 weight decay for optimizer 'adam');
- inputs normalised with the mean/std of the valid rows (re-fitted on every train call);
- bootstrap: at every step each member draws its own minibatch with replacement from the
  training rows (a per-step bootstrap, equal in distribution to resampling each epoch);
- validation split by a fixed hash of the row index (stable as the buffer grows); the
  `num_elites` members with the lowest validation MSE become the elites.

`make_train(config, net, arch_fn)` is used by `jaxmbrl.models.ensemble.make_ensemble`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmbrl.models import network
from jaxmbrl.models.types import EnsembleConfig, ModelHParams, ModelState

_LOG_2PI = math.log(2.0 * math.pi)


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


def make_optimizer(
    config: EnsembleConfig, learning_rate: Any, decay_coeffs: dict
) -> optax.GradientTransformation:
    """Adam (PETS: L2 decay in the loss) or AdamW (decoupled decay by `decay_coeffs`)."""
    parts = [optax.scale_by_adam()]
    if config.optimizer == "adamw":
        parts.append(_decoupled_decay(decay_coeffs))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)


def make_train(config: EnsembleConfig, net: network.EnsembleMLP, arch_fn: Callable) -> Callable:
    """Builds train(key, state, inputs, targets, num_valid, hparams) -> (state, metrics).

    Args:
      config: the ensemble's static settings.
      net: the ensemble network (all members).
      arch_fn: hparams -> (width, depth, activation index) used by the network.

    Returns:
      The pure training function of `Ensemble.train` (see `make_ensemble`).
    """
    scales = np.asarray(config.layer_decay_scales or (1.0,) * (config.max_hidden_layers + 1))
    scales = scales.astype(np.float32)
    e, n_elites = config.ensemble_size, config.num_elites

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
        width, layers, act = arch_fn(hparams)
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
        tx = make_optimizer(config, lr, decay)

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
        new_state = state._replace(
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

    return train
