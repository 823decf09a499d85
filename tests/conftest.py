"""Shared test set-up, as the binaries do it: 512-bit vectors on AVX-512 hosts (so tests and
binaries share compiled programs) and JAX's persistent compilation cache.

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
runtime.enable_compilation_cache()
