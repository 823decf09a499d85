"""PBT (Jaderberg et al., 2017) tuning the learning rate and weight decay of flax regressors.

A population of small flax MLPs fits a noisy 1-D function, each member with its own AdamW
learning rate and weight decay; PBT from `jaxmbrl.tuners` (the tuners of Zhang et al.,
AISTATS 2021) copies the weights of the best members into the worst and perturbs their
hyperparameters. Nothing here is specific to model-based RL: the tuner only sees a fitness
vector [N] and returns a `Decision`; exploit is a gather over the member axis
(`tuners.apply_decision`).

The whole run is one compiled program: `lax.scan` over PBT rounds; in each round every
member (`jax.vmap`) takes a fixed number of full-batch AdamW steps (`lax.scan`), is scored on
held-out data and the tuner updates. The baseline is random search on the same initial
configurations (same key, so the same samples) trained for the same steps without exploit.

    python -m examples.pbt_regression
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmbrl import tuners
from jaxmbrl.tuners import Float, SearchSpace

# A custom space: any `Float`/`Int`/`Categorical` tuple; the tuner works in the unit cube
# and `SPACE.from_unit` maps back; with log=True the cube is uniform in log lr, so PBT's
# explore moves (u * 0.8, u * 1.2) are steps in log lr.
SPACE = SearchSpace(
    (
        Float("learning_rate", 1e-5, 1.0, log=True, default=1e-3),
        Float("weight_decay", 1e-6, 1.0, log=True, default=1e-4),
    )
)


class Config(NamedTuple):
    """Sizes are static (they fix shapes); the tuned hyperparameters are traced."""

    population: int = 16
    rounds: int = 20  # PBT updates
    steps_per_round: int = 50  # AdamW steps between updates (one "trial" of the tuner)
    hidden: int = 32
    n_train: int = 64
    n_valid: int = 256
    noise: float = 0.1
    data_seed: int = 0


class Data(NamedTuple):
    x_train: jax.Array  # [n_train, 1]
    y_train: jax.Array
    x_valid: jax.Array  # [n_valid, 1]
    y_valid: jax.Array


class Members(NamedTuple):
    params: Any  # flax params, leading axis N
    opt_state: Any  # optax AdamW state, leading axis N


class Carry(NamedTuple):
    """Everything a run needs to continue: what a checkpoint holds."""

    key: jax.Array
    tuner_state: Any
    members: Members


class RoundLog(NamedTuple):
    """Per round (stacked by the scan to [R, N, ...])."""

    decision: tuners.Decision  # the decision run in this round; entry 0 is tuner.init's
    start_loss: jax.Array  # float32 [N]: validation MSE after exploit, before training
    loss: jax.Array  # float32 [N]: validation MSE after training (fitness = -loss)


class Experiment(NamedTuple):
    init: Callable[[jax.Array], Carry]  # key -> carry
    advance: Callable[[Carry, int], tuple[Carry, RoundLog]]  # (carry, rounds) -> ...
    run: Callable[[jax.Array], tuple[Carry, RoundLog]]  # key -> all `config.rounds` rounds
    tuner: tuners.Tuner


class MLP(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x):
        x = nn.tanh(nn.Dense(self.hidden)(x))
        x = nn.tanh(nn.Dense(self.hidden)(x))
        return nn.Dense(1)(x)


def make_data(config: Config) -> Data:
    """y = sin(3x) + noise on x ~ U[-1, 1] (few, noisy training points); clean validation."""
    k_train, k_valid, k_noise = jax.random.split(jax.random.PRNGKey(config.data_seed), 3)
    x_train = jax.random.uniform(k_train, (config.n_train, 1), minval=-1.0, maxval=1.0)
    x_valid = jax.random.uniform(k_valid, (config.n_valid, 1), minval=-1.0, maxval=1.0)
    noise = config.noise * jax.random.normal(k_noise, (config.n_train, 1))
    return Data(x_train, jnp.sin(3.0 * x_train) + noise, x_valid, jnp.sin(3.0 * x_valid))


def make_experiment(config: Config, tuner_name: str = "pbt") -> Experiment:
    """A population of MLP regressors tuned by `tuner_name` ('pbt' or 'random_search').

    Args:
      config: sizes and data settings.
      tuner_name: 'pbt' (the study's preset) or 'random_search' (no exploit: the baseline).

    Returns:
      An `Experiment` of jitted functions.
    """
    n = config.population
    if tuner_name == "pbt":
        # One tuner "trial" = `steps_per_round` AdamW steps, so every budget is 1.
        tuner = tuners.pbt(SPACE, n, step_trials=1, first_step_trials=1)
    elif tuner_name == "random_search":
        tuner = tuners.random_search(SPACE, n, step_trials=1)
    else:
        raise ValueError(f"unknown tuner {tuner_name!r}; valid: pbt, random_search")
    data = make_data(config)
    model = MLP(config.hidden)

    def mse(params, x, y):
        return jnp.mean((model.apply(params, x) - y) ** 2)

    def init_members(key: jax.Array) -> Members:
        params = jax.vmap(model.init, in_axes=(0, None))(jax.random.split(key, n), data.x_train[:1])
        # AdamW's state (count, mu, nu) does not depend on lr or weight decay, so one
        # transformation initialises it and `train` rebuilds it with each member's values.
        return Members(params, jax.vmap(optax.adamw(1.0).init)(params))

    def train(members: Members, lr: jax.Array, wd: jax.Array) -> Members:
        """`steps_per_round` full-batch AdamW steps of one member with traced lr and wd."""
        tx = optax.adamw(lr, weight_decay=wd)

        def step(m, _):
            grads = jax.grad(mse)(m.params, data.x_train, data.y_train)
            updates, opt_state = tx.update(grads, m.opt_state, m.params)
            return Members(optax.apply_updates(m.params, updates), opt_state), None

        return jax.lax.scan(step, members, None, length=config.steps_per_round)[0]

    def valid_loss(params) -> jax.Array:
        return jax.vmap(mse, in_axes=(0, None, None))(params, data.x_valid, data.y_valid)

    def one_round(carry: Carry, _) -> tuple[Carry, RoundLog]:
        key, k_fresh, k_update = jax.random.split(carry.key, 3)
        decision = carry.tuner_state.decision
        # Exploit: copy (gather) the sources' weights and optimiser states; restarted slots
        # (all of them in round 0) get fresh members.
        members = tuners.apply_decision(
            carry.members,
            decision,
            tuner.archive(carry.tuner_state),
            init_members(k_fresh),
        )
        start_loss = valid_loss(members.params)
        hp = SPACE.from_unit(decision.hparams)
        members = jax.vmap(train)(members, hp["learning_rate"], hp["weight_decay"])
        loss = valid_loss(members.params)
        # A diverged member has loss NaN/inf: the tuner ranks it last and overwrites it.
        tuner_state, _ = tuner.update(k_update, carry.tuner_state, -loss)
        return Carry(key, tuner_state, members), RoundLog(decision, start_loss, loss)

    def init(key: jax.Array) -> Carry:
        chex.assert_shape(key, (2,))
        k_tuner, k_members, k_run = jax.random.split(key, 3)
        return Carry(k_run, tuner.init(k_tuner), init_members(k_members))

    def advance(carry: Carry, rounds: int) -> tuple[Carry, RoundLog]:
        return jax.lax.scan(one_round, carry, None, length=rounds)

    def run(key: jax.Array) -> tuple[Carry, RoundLog]:
        return advance(init(key), config.rounds)

    return Experiment(jax.jit(init), jax.jit(advance, static_argnums=1), jax.jit(run), tuner)


def summarize(log: RoundLog) -> dict[str, Any]:
    """Host-side summary of one run's log (NaN losses count as worst)."""
    loss = np.asarray(log.loss)
    final = np.where(np.isfinite(loss[-1]), loss[-1], np.inf)
    best = int(np.argmin(final))
    slots, hp = tuners.lineage(log.decision, best)
    n = loss.shape[1]
    copies = int(np.sum(np.asarray(log.decision.source) != np.arange(n)))
    return {
        "best_loss": float(final[best]),
        "median_loss": float(np.median(final)),
        "best_member": best,
        "best_values": SPACE.to_dicts(hp[-1])[0],
        "lineage_slots": slots.tolist(),
        "initial_values": SPACE.to_dicts(hp[0])[0],
        "copies": copies,
    }


def main(config: Config | None = None, seed: int = 0) -> dict[str, dict[str, Any]]:
    config = Config() if config is None else config
    key = jax.random.PRNGKey(seed)
    out = {}
    for name in ("pbt", "random_search"):
        exp = make_experiment(config, name)
        t0 = time.perf_counter()
        compiled = exp.run.lower(key).compile()  # ahead of time, to time compile and run apart
        t1 = time.perf_counter()
        _, log = jax.block_until_ready(compiled(key))
        t2 = time.perf_counter()
        s = out[name] = summarize(log)
        print(
            f"{name:13s} valid MSE best {s['best_loss']:.4f} median {s['median_loss']:.4f}; "
            f"exploit copies {s['copies']}; compile {t1 - t0:.1f} s, run {t2 - t1:.2f} s"
        )
    s = out["pbt"]
    fmt = lambda d: ", ".join(f"{k} {v:.2e}" for k, v in d.items())
    print(f"pbt best member {s['best_member']}: started with {fmt(s['initial_values'])}")
    print(f"  ended with {fmt(s['best_values'])}; ancestry (slot per round) {s['lineage_slots']}")
    return out


if __name__ == "__main__":
    main()
