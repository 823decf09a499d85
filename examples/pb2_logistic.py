"""PB2 (Parker-Holder et al., NeurIPS 2020) scheduling SGD's step size on a foreign JAX problem.

Four members train a logistic regression by momentum SGD, each with its own learning rate
and momentum; `jaxmbrl.tuners.pb2` (next to the tuners of Zhang et al., AISTATS 2021)
copies the best member's weights into the worst and picks its new hyperparameters with a
time-varying GP bandit. The whole tuning run is one `lax.scan` over rounds, jitted, and
vmapped over seeds: no Python loop over steps, members or seeds.

    python -m examples.pb2_logistic
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import tuners

SPACE = tuners.SearchSpace(
    (tuners.Float("learning_rate", 1e-3, 10.0, log=True), tuners.Float("momentum", 0.0, 0.99))
)
POPULATION, ROUNDS, STEPS, DIM = 4, 12, 10, 20


def make_data(key):
    k_w, k_x = jax.random.split(key)
    w_true = jax.random.normal(k_w, (DIM,))
    x = jax.random.normal(k_x, (512, DIM))
    return x, (x @ w_true > 0).astype(jnp.float32)


def loss(w, x, y):
    logits = x @ w
    return jnp.mean(jnp.logaddexp(0.0, logits) - y * logits)


def train(member, hparams, x, y):
    """STEPS momentum-SGD steps of one member; member = (weights, velocity)."""
    h = SPACE.from_unit(hparams)

    def step(m, _):
        w, v = m
        v = h["momentum"] * v + jax.grad(loss)(w, x, y)
        return (w - h["learning_rate"] * v, v), None

    return jax.lax.scan(step, member, None, STEPS)[0]


def tune(key):
    """One seed's run: (final losses [N], best loss per round [ROUNDS])."""
    tuner = tuners.pb2(SPACE, POPULATION, step_trials=1, first_step_trials=1)
    k_data, k_tuner, k_run = jax.random.split(key, 3)
    x, y = make_data(k_data)
    state = tuner.init(k_tuner)
    members = (jnp.zeros((POPULATION, DIM)), jnp.zeros((POPULATION, DIM)))

    def round_(carry, k):
        state, members = carry
        members = tuners.apply_decision(members, state.decision)
        members = jax.vmap(train, (0, 0, None, None))(members, state.decision.hparams, x, y)
        losses = jax.vmap(loss, (0, None, None))(members[0], x, y)
        fitness = jnp.where(jnp.isfinite(losses), -losses, -jnp.inf)  # diverged: worst
        state, _ = tuner.update(k, state, fitness)
        return (state, members), jnp.min(jnp.where(jnp.isfinite(losses), losses, jnp.inf))

    keys = jax.random.split(k_run, ROUNDS)
    (state, members), best = jax.lax.scan(round_, (state, members), keys)
    return jax.vmap(loss, (0, None, None))(members[0], x, y), best


run_seeds = jax.jit(jax.vmap(tune))


def main(seeds=(0, 1, 2, 3)):
    _, best = run_seeds(jax.vmap(jax.random.PRNGKey)(np.asarray(seeds)))
    best = np.asarray(best)
    for seed, curve in zip(seeds, best, strict=True):
        print(f"seed {seed}: best loss after round 1 {curve[0]:.4f} -> end {curve[-1]:.4f}")
    return best


if __name__ == "__main__":
    main()
