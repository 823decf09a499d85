"""The one tiny-but-real tuning-run shape that the suite's end-to-end tests share.

A tuning run's programs are fixed by the env, the preset, the population and the trial
length; the tuner, seed, trials and schedule are traced or host-side. Tests that run PETS end
to end (in-process or through a binary) use these sizes unless a size is what they test, so
JAX's persistent compilation cache (one directory for the session and its subprocesses, see
conftest.py) serves every run after the first one. Progress callbacks stay off except in the
progress tests: a program with a host callback is never written to the persistent cache.
"""

from __future__ import annotations

# cartpole (the study's), tiny preset, 2 members, 4 trials (they size the replay buffer) of
# 20 steps, no progress callbacks.
RUN = dict(
    env="cartpole",
    preset="tiny",
    population=2,
    trials=4,
    trial_length=20,
    space="planning",
    progress_every=0,
)


def flags(**overrides) -> list[str]:
    """`RUN` (with `overrides`) as the flags of `benchmarks.tune`."""
    return [f"--{name}={value}" for name, value in {**RUN, **overrides}.items()]
