"""Shared test set-up: JAX's persistent compilation cache speeds repeated runs.

The suite must also pass cold (CI on a clean machine): the cache is an optimisation only.
"""

import os

import jax

jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("JAXMBRL_CACHE_DIR", os.path.expanduser("~/.cache/jaxmbrl/jax")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
