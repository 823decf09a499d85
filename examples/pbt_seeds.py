"""Several independent PBT runs (seeds) as one program: `jax.vmap` over whole tuning runs.

The scanned PBT run of `examples.pbt_regression` (PBT: Jaderberg et al., 2017; the tuners of
Zhang et al., AISTATS 2021) is a pure function of its PRNG key, so vmapping it over S keys
runs S independent tunings side by side, each with its own population, tuner state and
exploit decisions: no Python loop over seeds, one compilation. The study repeats every
tuner over seeds to report a mean and spread; this is how to get them in one call.

    python -m examples.pbt_seeds
"""

from __future__ import annotations

import time

import jax
import numpy as np

from examples import pbt_regression
from examples.pbt_regression import Carry, Config, RoundLog


def make_multi_seed_run(config: Config, tuner_name: str = "pbt"):
    """keys [S, 2] -> (carries, logs), every leaf with a leading seed axis S."""
    exp = pbt_regression.make_experiment(config, tuner_name)
    # `exp.run` is jitted; vmapping the jitted function gives one jitted batched program.
    return jax.jit(jax.vmap(exp.run))


def run_seeds(config: Config, seeds: list[int], tuner_name: str = "pbt") -> tuple[Carry, RoundLog]:
    keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds))
    return make_multi_seed_run(config, tuner_name)(keys)


def main(config: Config | None = None, seeds: tuple[int, ...] = (0, 1, 2, 3)) -> list[dict]:
    config = Config() if config is None else config
    t0 = time.perf_counter()
    _, logs = jax.block_until_ready(run_seeds(config, list(seeds)))
    seconds = time.perf_counter() - t0
    summaries = []
    for s, seed in enumerate(seeds):  # host-side reporting only; the runs are already done
        summary = pbt_regression.summarize(jax.tree.map(lambda x, s=s: x[s], logs))
        summaries.append(summary)
        print(
            f"seed {seed}: best valid MSE {summary['best_loss']:.4f}, "
            f"median {summary['median_loss']:.4f}, exploit copies {summary['copies']}"
        )
    best = np.array([s["best_loss"] for s in summaries])
    print(
        f"{len(seeds)} PBT runs x {config.population} members in one vmapped program: "
        f"best MSE mean {best.mean():.4f} +- {best.std():.4f}; {seconds:.1f} s incl. compile"
    )
    return summaries


if __name__ == "__main__":
    main()
