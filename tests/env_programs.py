"""Each environment's jit(reset) and jit(step), compiled once per pytest process.

MJX programs take 5-60 s each to compile on a 2-core CPU (the 7-DoF arms the most), so
tests/test_envs.py and tests/test_envs_study.py take their environments and programs
from here: a test that needs a reset or a step of an env another test already stepped
reuses that executable instead of tracing, lowering and compiling its own.

    env, reset, step = compiled("pusher")
"""

from __future__ import annotations

import functools

import jax

from jaxmbrl import envs


@functools.cache
def compiled(name: str):
    """(env, jit(env.reset), jit(env.step)) of ``envs.load(name)``, built once."""
    env = envs.load(name)
    jit = functools.partial(jax.jit, compiler_options=env.compiler_options)
    return env, jit(env.reset), jit(env.step)


def loaded(name: str) -> envs.MjxEnv:
    """``envs.load(name)`` at its defaults, built once (MJX's put_model is not free)."""
    return compiled(name)[0]
