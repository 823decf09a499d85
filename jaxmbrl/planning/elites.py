"""CEM's distribution update from ranked candidates (PETS, Chua et al., NeurIPS 2018), exact.

The elite statistics are sums over a zero-padded, rank-ordered, power-of-two buffer reduced
by explicit pairwise adds, so a planner padded to more candidates only adds exact zeros at
the top of the tree and returns bit-for-bit what an unpadded planner returns. Padded
candidates get cost +inf and non-finite costs become 1e6 (the original's), so a stable
argsort ranks the real candidates identically whatever the padding.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

# The original (handful-of-trials) replaces non-finite predicted costs by this value.
NONFINITE_COST = 1e6


def tree_sum(x: jax.Array, size: int) -> jax.Array:
    """Sum over axis 0 by explicit pairwise adds on a zero-padded power-of-two buffer.

    Padding a prefix with more zeros only adds exact zeros at the top of the tree, so the sum of
    a prefix is bit-identical whatever the padded length (XLA's own reductions do not promise
    this across lengths).
    """
    x = jnp.concatenate([x, jnp.zeros((size - x.shape[0],) + x.shape[1:], x.dtype)], axis=0)
    while x.shape[0] > 1:
        x = x[0::2] + x[1::2]
    return x[0]


def make_update(
    max_population: int, population: jax.Array, num_elites: jax.Array, alpha: jax.Array
) -> Callable:
    """Builds update(mean, var, cands [>= P, H, A], costs [>= P]) -> (mean, var, plan, best,
    mean elite cost): one CEM update with momentum `alpha` from the first `population` of
    `max_population` (P) candidates, `num_elites` of them elites (all traced scalars)."""
    buffer = 1 << (max_population - 1).bit_length()  # power of two >= max_population
    is_real = jnp.arange(max_population) < population
    is_elite = (jnp.arange(max_population) < num_elites)[:, None, None]
    elite_count = num_elites.astype(jnp.float32)

    def update(mean, var, cands, costs):
        cands, costs = cands[:max_population], costs[:max_population]
        costs = jnp.where(jnp.isfinite(costs), costs, NONFINITE_COST)
        costs = jnp.where(is_real, costs, jnp.inf)  # padded candidates rank after all real
        order = jnp.argsort(costs, stable=True)
        ranked, ranked_costs = cands[order], costs[order]
        elite_mean = tree_sum(jnp.where(is_elite, ranked, 0.0), buffer) / elite_count
        dev = jnp.where(is_elite, ranked - elite_mean, 0.0)
        elite_var = tree_sum(dev * dev, buffer) / elite_count
        elite_cost = tree_sum(jnp.where(is_elite[:, 0, 0], ranked_costs, 0.0), buffer)
        mean = alpha * mean + (1.0 - alpha) * elite_mean
        var = alpha * var + (1.0 - alpha) * elite_var
        return mean, var, elite_mean, ranked_costs[0], elite_cost / elite_count

    return update
