"""Shared test set-up, as the binaries do it: 512-bit vectors on AVX-512 hosts and threefry
unrolled on the CPU (so tests and binaries share compiled programs) and JAX's persistent
compilation cache.

One cache directory serves the whole session and every subprocess the tests start (they
inherit JAXMBRL_CACHE_DIR), so a binary run in a test loads the programs that an in-process
fixture compiled (tests/tiny.py holds the shared sizes). Unless JAXMBRL_CACHE_DIR is set, it
is `.jax_cache/` in the checkout (git-ignored): a fresh clone, as in CI, runs cold, and a
second local run is warm. The suite must pass cold: the cache is an optimisation only.
"""

import os

from jaxmbrl import runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("JAXMBRL_CACHE_DIR", os.path.join(REPO, ".jax_cache"))

runtime.prefer_wide_vectors()
runtime.unroll_threefry()
runtime.enable_compilation_cache()

# The files that take longest (CPU seconds of a cold run, BUILD_NOTES.md "Test suite"), in
# that order, start first: `make test` runs `-n 2 --dist loadfile --no-loadscope-reorder`
# (one file per worker at a time, in collection order), so the two workers end together
# instead of one finishing a long file alone. Files not named keep their order after these.
LONGEST_FIRST = (
    "test_population.py",
    "test_sharding.py",
    "test_envs.py",
    "test_throughput.py",
    "test_tuning.py",
    "test_study.py",
    "test_pets.py",
    "test_render.py",
    "test_progress.py",
    "test_models.py",
    "test_planning.py",
    "test_tuners.py",
    "test_pb2_bohb.py",
    "test_examples.py",
    "test_faults.py",
    "test_study_compiles.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: within a file
