"""Shared test set-up, as the binaries do it: 512-bit vectors on AVX-512 hosts (so tests and
binaries share compiled programs) and JAX's persistent compilation cache.

The suite must also pass cold (CI on a clean machine): the cache is an optimisation only.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import _cli  # noqa: E402

_cli.prefer_wide_vectors()
_cli.enable_compilation_cache()
