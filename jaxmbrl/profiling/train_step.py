"""What one gradient step of PETS' model training costs against a bare jitted adam step.

PETS (Chua et al. 2018) trains its probabilistic ensemble between trials; in the study
(Zhang et al., AISTATS 2021) that training is a large share of a CPU's budget. This
measures the *marginal* cost of one gradient step of `Ensemble.train` (minibatch gather,
Gaussian NLL with the log-variance clamp, per-layer weight decay, adam, the per-step finite
check and the validation at the end) against a bare `optax.adam` step of the same
`EnsembleMLP` on the same minibatch shapes inside a `lax.fori_loop`. Marginal: each side
runs `epochs_low` and `epochs_high` epochs and the difference of the times is divided by the
difference of the gradient steps, so one-off work (validation, shuffles, dispatch) cancels.
The two sides alternate within each round; the ratio's median and spread are reported.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxmbrl.models import ensemble as ensemble_lib
from jaxmbrl.models import network
from jaxmbrl.options import check_options, option


@dataclasses.dataclass(frozen=True)
class TrainStepConfig:
    """What `benchmarks/train_step.py` measures (its flags); defaults: the paper's cheetah model."""

    input_size: int = option(24, "Model inputs (half_cheetah: 18 features + 6 actions).", low=1)
    output_size: int = option(18, "Model targets (half_cheetah: 18).", low=1)
    ensemble_size: int = option(5, "Ensemble members.", low=1)
    hidden_width: int = option(200, "Hidden units per layer.", low=1)
    hidden_layers: int = option(4, "Hidden layers.", low=1)
    batch_size: int = option(32, "Minibatch rows per member.", low=1)
    rows: int = option(2000, "Rows of training data.", low=2)
    epochs_low: int = option(1, "Epochs of the short run.", low=1)
    epochs_high: int = option(16, "Epochs of the long run.", low=2)
    rounds: int = option(5, "Alternated rounds.", low=3)

    def validate(self) -> None:
        check_options(self)
        if self.epochs_high <= self.epochs_low:
            raise ValueError(
                f"epochs_high={self.epochs_high} must be > epochs_low={self.epochs_low}"
            )


def _programs(config: TrainStepConfig):
    ens_config = ensemble_lib.EnsembleConfig(
        input_size=config.input_size,
        output_size=config.output_size,
        ensemble_size=config.ensemble_size,
        num_elites=min(config.ensemble_size, 5),
        max_hidden_width=config.hidden_width,
        max_hidden_layers=config.hidden_layers,
        max_epochs=config.epochs_high,
        batch_size=config.batch_size,
    )
    ensemble = ensemble_lib.make_ensemble(ens_config)
    hparams = ensemble_lib.default_model_hparams(ens_config)
    data_key, init_key, train_key = jax.random.split(jax.random.PRNGKey(0), 3)
    x_key, y_key = jax.random.split(data_key)
    x = jax.random.normal(x_key, (config.rows, config.input_size))
    y = jax.random.normal(y_key, (config.rows, config.output_size))
    state = jax.jit(ensemble.init)(init_key, hparams)
    train = jax.jit(ensemble.train)

    def ours(epochs: int) -> int:
        hp = hparams._replace(epochs=jnp.asarray(epochs, jnp.int32))
        _, metrics = jax.block_until_ready(
            train(train_key, state, x, y, jnp.asarray(config.rows), hp)
        )
        return int(metrics["steps"])

    net = network.EnsembleMLP(
        config.ensemble_size,
        config.input_size,
        config.output_size,
        config.hidden_width,
        config.hidden_layers,
        "silu",
        False,
    )
    tx = optax.adam(1e-3)
    shape = (config.ensemble_size, config.batch_size)
    xb = jax.random.normal(x_key, (*shape, config.input_size))
    yb = jax.random.normal(y_key, (*shape, config.output_size))

    def loss(params):
        mean, logvar = net.apply({"params": params}, xb, config.hidden_width, config.hidden_layers)
        return jnp.sum(jnp.mean((mean - yb) ** 2 * jnp.exp(-logvar) + logvar, axis=(1, 2)))

    @jax.jit
    def bare_steps(params, n):
        def body(_, carry):
            params, opt_state = carry
            updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        return jax.lax.fori_loop(0, n, body, (params, tx.init(params)))

    def bare(steps: int) -> int:
        jax.block_until_ready(bare_steps(state.params, steps))
        return steps

    return ours, bare


def _timed(fn, arg) -> tuple[float, int]:
    start = time.perf_counter()
    out = fn(arg)
    return time.perf_counter() - start, out


def measure(config: TrainStepConfig) -> dict[str, Any]:
    """Marginal seconds per gradient step of `Ensemble.train` and of a bare adam step."""
    config.validate()
    ours, bare = _programs(config)
    low_steps, high_steps = ours(config.epochs_low), ours(config.epochs_high)  # compiles
    bare(low_steps)
    steps = high_steps - low_steps
    rounds = []
    for _ in range(config.rounds):
        t_low, _ = _timed(ours, config.epochs_low)
        t_high, _ = _timed(ours, config.epochs_high)
        b_low, _ = _timed(bare, low_steps)
        b_high, _ = _timed(bare, high_steps)
        train_s, bare_s = (t_high - t_low) / steps, (b_high - b_low) / steps
        rounds.append(dict(train_s=train_s, bare_s=bare_s, ratio=train_s / bare_s))
    ratios = [r["ratio"] for r in rounds]
    return dict(
        config=dataclasses.asdict(config),
        steps_low=low_steps,
        steps_high=high_steps,
        rounds=rounds,
        train_s=statistics.median(r["train_s"] for r in rounds),
        bare_s=statistics.median(r["bare_s"] for r in rounds),
        ratio=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
    )
