"""Tests of the candidate-chunk rule of CEM (jaxmbrl.planning.chunks) and its accounting.

Hand-computed: max_population 40 in chunks of 7 (whole chunks would run 42 for 36..40).
"""

import jax.numpy as jnp
import numpy as np

from jaxmbrl.planning import chunks
from jaxmbrl.profiling import flops


def test_executed_population_is_whole_chunks_or_all_at_once():
    population = np.array([1, 7, 8, 34, 35, 36, 40])
    np.testing.assert_array_equal(
        chunks.executed_population(population, 7, 40), [7, 7, 14, 35, 35, 40, 40]
    )
    traced = chunks.executed_population(jnp.asarray(population), 7, 40)
    np.testing.assert_array_equal(traced, [7, 7, 14, 35, 35, 40, 40])
    assert chunks.chunk_size(40, None) == 40 and chunks.chunk_size(40, 100) == 40


def test_trip_counts_one_loop_or_the_other():
    wide, num = chunks.trip_counts(jnp.asarray([15, 35, 36, 40]), 7, 40)
    np.testing.assert_array_equal(wide, [0, 0, 1, 1])
    np.testing.assert_array_equal(num, [3, 5, 0, 0])
    wide, num = chunks.trip_counts(jnp.asarray(12), 40, 40)  # unchunked: always at once
    assert (int(wide), int(num)) == (1, 0)


def test_vmapped_group_mixing_both_kinds_runs_both_loops():
    # (iterations, population, horizon): 2 x 14 x 3 chunked, 3 x 40 x 5 all at once.
    rows = flops.executed_planner_flops(
        1.0, [2, 3], [3, 5], 40, 1, population=[10, 38], candidate_chunk=7, flat=True
    )
    assert rows == 2 * (3 * 5 * 40 + 2 * 14 * 3)
    # Nested loops: max(i) x max(h) x (40 at once + the largest chunked 14).
    rows = flops.executed_planner_flops(
        1.0, [2, 3], [3, 5], 40, 1, population=[10, 38], candidate_chunk=7
    )
    assert rows == 2 * 3 * 5 * (40 + 14)
    # Alone, each pays only its own loop.
    alone = flops.executed_planner_flops(
        1.0, 3, 5, 40, 1, population=38, candidate_chunk=7, flat=True
    )
    assert alone == 3 * 40 * 5
