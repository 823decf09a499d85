"""Shared test set-up, as the binaries do it: 512-bit vectors on AVX-512 hosts (so tests and
binaries share compiled programs) and JAX's persistent compilation cache.

The suite must also pass cold (CI on a clean machine): the cache is an optimisation only.
"""

from jaxmbrl import runtime

runtime.prefer_wide_vectors()
runtime.enable_compilation_cache()
