"""Checkpoint a PBT run mid-way with orbax, restore it, and continue bit-identically.

A tuning run of `examples.pbt_regression` (PBT: Jaderberg et al., 2017; the tuners of
Zhang et al., AISTATS 2021) is a pure function of its carry: PRNG key, tuner state
(`PBTState`: step counter and the decision in force) and the members' weights and optimiser
states. Saving that pytree with orbax-checkpoint after some rounds and restoring it into the
same structure continues the run exactly as if it had never stopped: same decisions, same
weights, bit for bit (on the same machine and program).

    python -m examples.checkpoint_resume
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from examples import pbt_regression
from examples.pbt_regression import Carry, Config, RoundLog


def save(path: str, carry: Carry) -> None:
    """Writes `carry` to `path` (a new directory; orbax renames it into place when complete)."""
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, carry)
    checkpointer.wait_until_finished()  # saves are asynchronous; return only once on disk


def restore(path: str, like: Carry) -> Carry:
    """Reads the carry saved at `path` into the structure, shapes and dtypes of `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    # Given the abstract target, orbax rebuilds its exact tree (the NamedTuples PBTState,
    # Decision and optax's states included), so the result drops straight into `advance`.
    return ocp.StandardCheckpointer().restore(path, abstract)


def interrupted_run(
    config: Config, key: jax.Array, split: int, directory: str
) -> tuple[Carry, RoundLog, RoundLog]:
    """`split` rounds, checkpoint, restore, the remaining rounds: (final carry, log1, log2)."""
    exp = pbt_regression.make_experiment(config)
    carry, log1 = exp.advance(exp.init(key), split)
    path = os.path.join(directory, f"round_{split}")
    save(path, carry)
    # Restore into a freshly initialised carry of the same shapes, as a new process would.
    resumed = restore(path, exp.init(jax.random.PRNGKey(12345)))
    carry, log2 = exp.advance(resumed, config.rounds - split)
    return carry, log1, log2


def trees_equal(a: Any, b: Any) -> bool:
    """Bit-identical pytrees (same structure, leaves equal as bytes; NaN == NaN)."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(
            map(np.asarray, jax.tree.leaves(a)), map(np.asarray, jax.tree.leaves(b)), strict=True
        )
    )


def main(config: Config | None = None, seed: int = 0, split: int | None = None) -> dict[str, Any]:
    config = Config() if config is None else config
    split = config.rounds // 2 if split is None else split
    key = jax.random.PRNGKey(seed)
    exp = pbt_regression.make_experiment(config)
    final, log = exp.run(key)
    with tempfile.TemporaryDirectory() as directory:
        resumed_final, log1, log2 = interrupted_run(config, key, split, directory)
    resumed_log = jax.tree.map(lambda a, b: np.concatenate([a, b]), log1, log2)
    same_state, same_log = trees_equal(final, resumed_final), trees_equal(log, resumed_log)
    loss = np.asarray(log.loss[-1])
    print(f"checkpoint after round {split} of {config.rounds}, restored, continued")
    print(f"final carry (tuner state, weights, optimiser states, key) bit-identical: {same_state}")
    print(f"per-round decisions and losses bit-identical: {same_log}")
    print(
        f"tuner step {int(final.tuner_state.step)}, best valid MSE "
        f"{np.nanmin(loss):.4f} (uninterrupted) / {np.nanmin(np.asarray(log2.loss[-1])):.4f}"
        " (resumed)"
    )
    return {
        "same_state": same_state,
        "same_log": same_log,
        "final": final,
        "resumed": resumed_final,
    }


if __name__ == "__main__":
    main()
