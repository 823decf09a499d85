"""Several independent PBT runs (seeds) as one program: `jax.vmap` over whole tuning runs.

The scanned PBT run of `examples.pbt_regression` (PBT: Jaderberg et al., 2017; the tuners of
Zhang et al., AISTATS 2021) is a pure function of its PRNG key, so vmapping it over S keys
runs S independent tunings side by side, each with its own population, tuner state and
exploit decisions: no Python loop over seeds, one compilation. The study repeats every
tuner over seeds to report a mean and spread; this is how to get them in one call.

A seed's batched run equals its run alone only up to float rounding: XLA:CPU chooses
reduction kernels by shape, so adding the seed axis moves losses by a few ulps (measured
<= 2.4e-7 after the first round), and PBT's ranking can turn such a difference into another
exploit decision once members are close (measured at the default sizes: seeds 0-3 first
differ in round 2, 8, 7 and 7 of 20). The runs stay independent and equally valid samples;
compare a seed's batched and single run exactly only on short runs (tests/test_examples.py).

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
    keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds))
    t0 = time.perf_counter()
    compiled = make_multi_seed_run(config).lower(keys).compile()
    t1 = time.perf_counter()
    _, logs = jax.block_until_ready(compiled(keys))
    t2 = time.perf_counter()
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
        f"best MSE mean {best.mean():.4f} +- {best.std():.4f}; compile {t1 - t0:.1f} s, "
        f"run {t2 - t1:.2f} s"
    )
    return summaries


if __name__ == "__main__":
    main()
