"""Batched-weight ensemble MLP of PETS (Chua et al., NeurIPS 2018) with padded width/depth.

All E members share one set of stacked weights with a leading member axis, so each layer is
a single einsum over the member axis. With `tunable_architecture`, hidden width and depth are
traced values: the weights have the static maximum shape, hidden units >= `hidden_width` are
zeroed after the activation, and hidden-to-hidden layers beyond `hidden_layers` are skipped
(identity), so a padded network computes exactly what an unpadded one with the sliced weights
computes. Without it (the default: width and depth are not tuned) the network is always the
full maximum size and the masks and layer selects are left out of the program (the planner's
hot path). The output is a Gaussian mean and a log-variance soft-clamped between learned bounds.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = ("silu", "relu", "tanh", "sigmoid")
_ACTIVATION_FNS = (jax.nn.silu, jax.nn.relu, jnp.tanh, jax.nn.sigmoid)

# Which axis of each parameter is the ensemble-member axis (None: shared by all members).
MEMBER_AXIS = {
    "w_in": 0,
    "b_in": 0,
    "w_hid": 1,
    "b_hid": 1,
    "w_out": 0,
    "b_out": 0,
    "max_logvar": None,
    "min_logvar": None,
}


def pets_kernel_init(key: jax.Array, shape: tuple, dtype=jnp.float32) -> jax.Array:
    """PETS init: truncated normal (cut at +-2 std), std 1/(2 sqrt(fan_in)), fan_in = shape[-2]."""
    std = 1.0 / (2.0 * math.sqrt(shape[-2]))
    return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


@jax.custom_jvp
def soft_clamp_logvar(logvar: jax.Array, max_logvar: jax.Array, min_logvar: jax.Array) -> jax.Array:
    """PETS' soft bounds: lv' = max - softplus(max - lv), then min + softplus(lv' - min).

    Evaluated as log(exp(min) + 1 / (exp(-max) + exp(-lv))), the same function (exp(lv') =
    1 / (exp(-max) + exp(-lv)) and exp(min + softplus(lv' - min)) = exp(min) + exp(lv')),
    with one exp and one log per element instead of two exp and two log1p: about 8% of a
    paper-size planning step on CPU. Exact while the bounds are inside float32's exp range
    (|bound| < 87); lv -> -inf gives min, +inf gives log(exp(min) + exp(max)), NaN gives NaN.
    The derivative is computed from the softplus form (stable for any lv).
    """
    return jnp.log(_soft_clamped_var(logvar, max_logvar, min_logvar))


def soft_clamp_std(logvar: jax.Array, max_logvar: jax.Array, min_logvar: jax.Array) -> jax.Array:
    """exp(soft_clamp_logvar(...) / 2), the predictive std, without the log and second exp.

    sqrt(exp(min) + 1 / (exp(-max) + exp(-lv))): what trajectory sampling needs per particle
    and step. On CPU this replaces exp, divide, log, exp by exp, divide, sqrt.
    """
    return jnp.sqrt(_soft_clamped_var(logvar, max_logvar, min_logvar))


def _soft_clamped_var(logvar: jax.Array, max_logvar: jax.Array, min_logvar: jax.Array):
    """exp(min) + 1 / (exp(-max) + exp(-lv)): the variance both soft clamps are built on."""
    return jnp.exp(min_logvar) + 1.0 / (jnp.exp(-max_logvar) + jnp.exp(-logvar))


@soft_clamp_logvar.defjvp
def _soft_clamp_logvar_jvp(primals, tangents):
    logvar, max_logvar, min_logvar = primals
    d_lv, d_max, d_min = tangents
    upper = max_logvar - jax.nn.softplus(max_logvar - logvar)
    inner = jax.nn.sigmoid(upper - min_logvar)
    tangent = inner * (
        jax.nn.sigmoid(max_logvar - logvar) * d_lv + jax.nn.sigmoid(logvar - max_logvar) * d_max
    )
    tangent = tangent + jax.nn.sigmoid(min_logvar - upper) * d_min
    return soft_clamp_logvar(logvar, max_logvar, min_logvar), tangent


def fold_normalizer(params: dict, mean: jax.Array, std: jax.Array) -> dict:
    """Folds the input normalisation (x - mean) / std into the first layer.

    w_in' = w_in / std and b_in' = b_in - (mean / std) @ w_in, so the network applied to raw
    inputs x with the returned parameters equals it applied to (x - mean) / std with `params`
    (up to float rounding); costs one [input, width] product per member instead of a pass
    over every input row.
    """
    inv = 1.0 / std
    w_in = params["w_in"]
    b_in = params["b_in"] - jnp.einsum("i,eih->eh", mean * inv, w_in)[:, None, :]
    return {**params, "w_in": w_in * inv[:, None], "b_in": b_in}


def activation_fn(name: str | None, index: jax.Array):
    """Static activation by name, or (name None) a traced choice by index via lax.switch."""
    if name is not None:
        return _ACTIVATION_FNS[ACTIVATIONS.index(name)]
    index = jnp.clip(jnp.asarray(index, jnp.int32), 0, len(ACTIVATIONS) - 1)
    return lambda z: jax.lax.switch(index, _ACTIVATION_FNS, z)


class EnsembleMLP(nn.Module):
    """E-member MLP: input -> max_hidden_layers hidden layers -> (mean, logvar)."""

    ensemble_size: int
    input_size: int
    output_size: int
    max_hidden_width: int
    max_hidden_layers: int
    activation: str | None = "silu"
    tunable_architecture: bool = True  # False: always full size; width/depth args ignored
    # "bfloat16": the matmuls' operands in bfloat16, accumulated in float32 (parameters,
    # biases, activations and the outputs stay float32); see EnsembleConfig.forward_dtype.
    dtype: str = "float32"

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        hidden_width: jax.Array,
        hidden_layers: jax.Array,
        activation_index: jax.Array = 0,
        return_std: bool = False,
    ) -> tuple[jax.Array, jax.Array]:
        """x: normalised inputs [E, N, input_size] -> (mean, logvar), each [E, N, output_size].

        With `return_std` the second output is the predictive standard deviation instead.
        """
        e, h, o = self.ensemble_size, self.max_hidden_width, self.output_size
        extra = self.max_hidden_layers - 1
        zeros = nn.initializers.zeros
        w_in = self.param("w_in", pets_kernel_init, (e, self.input_size, h))
        b_in = self.param("b_in", zeros, (e, 1, h))
        w_hid = self.param("w_hid", pets_kernel_init, (extra, e, h, h))
        b_hid = self.param("b_hid", zeros, (extra, e, 1, h))
        w_out = self.param("w_out", pets_kernel_init, (e, h, 2 * o))
        b_out = self.param("b_out", zeros, (e, 1, 2 * o))
        max_logvar = self.param("max_logvar", nn.initializers.constant(0.5), (1, o))
        min_logvar = self.param("min_logvar", nn.initializers.constant(-10.0), (1, o))

        act = activation_fn(self.activation, activation_index)
        if self.tunable_architecture:
            # sigmoid(0) != 0, so padded units are masked after the activation.
            unit_mask = (jnp.arange(h) < hidden_width).astype(x.dtype)
            masked_act = lambda z: act(z) * unit_mask
        else:
            masked_act = act
        if self.dtype == "float32":
            mm = jnp.einsum
        else:  # bfloat16 operands, float32 accumulation: AVX512_BF16 / tensor cores
            low = jnp.dtype(self.dtype)
            mm = lambda spec, a, b: jnp.einsum(  # noqa: E731
                spec, a.astype(low), b.astype(low), preferred_element_type=jnp.float32
            )
        z = masked_act(mm("eni,eih->enh", x, w_in) + b_in)
        for layer in range(extra):  # static depth <= max_hidden_layers, not a member loop
            new_z = masked_act(mm("enh,ehk->enk", z, w_hid[layer]) + b_hid[layer])
            if self.tunable_architecture:
                z = jnp.where(layer + 1 < hidden_layers, new_z, z)
            else:
                z = new_z
        out = mm("enh,eho->eno", z, w_out) + b_out
        mean, logvar = out[..., :o], out[..., o:]
        if return_std:
            return mean, soft_clamp_std(logvar, max_logvar, min_logvar)
        return mean, soft_clamp_logvar(logvar, max_logvar, min_logvar)


def gather_members(params: dict, members: jax.Array) -> dict:
    """Selects ensemble members (e.g. the elites) from stacked parameters."""
    out = {}
    for name, value in params.items():
        axis = MEMBER_AXIS[name]
        out[name] = value if axis is None else jnp.take(value, members, axis=axis)
    return out


def active_masks(params: dict, hidden_width: jax.Array, hidden_layers: jax.Array) -> dict:
    """1.0 where a weight matrix entry is in use for this width/depth, 0.0 elsewhere.

    Only weight matrices get masks (weight decay applies to them, as in PETS); biases and
    log-variance bounds map to None.
    """
    h = params["w_in"].shape[-1]
    unit = (jnp.arange(h) < hidden_width).astype(jnp.float32)
    extra = params["w_hid"].shape[0]
    layer_on = (jnp.arange(extra) + 1 < hidden_layers).astype(jnp.float32)
    return {
        "w_in": unit[None, None, :],
        "w_hid": layer_on[:, None, None, None] * unit[:, None] * unit[None, :],
        "w_out": unit[None, :, None],
    }
