"""MJX environments of Zhang et al. 2021 (PETS tasks): registry and public API.

``load(name, **overrides)`` builds an environment with its config fields overridden, e.g.
``load('half_cheetah', iterations=8, episode_length=100)``. ``STUDY_ENVS`` are the study's
five tasks on PETS' models; ``ALL_ENVS`` adds the variants ``pusher_gym`` (gymnasium's
pusher_v5), ``reacher_planar`` (gymnasium's 2-DoF reacher) and ``cartpole_gear10``
(jaxmbrl's earlier light cart-pole). Jit programs that step an env
with ``jax.jit(f, compiler_options=env.compiler_options)`` (a CPU workaround for pusher),
and batch above 256 with ``BatchedEnv`` / ``chunked_vmap`` (a CPU LAPACK hang guard).
"""

from __future__ import annotations

import dataclasses

from jaxmbrl.envs.base import MjxConfig, MjxEnv, State
from jaxmbrl.envs.cartpole import Cartpole, CartpoleConfig
from jaxmbrl.envs.cartpole_gear10 import CartpoleGear10, CartpoleGear10Config
from jaxmbrl.envs.half_cheetah import HalfCheetah, HalfCheetahConfig
from jaxmbrl.envs.hopper import Hopper, HopperConfig
from jaxmbrl.envs.pusher import Pusher, PusherConfig
from jaxmbrl.envs.pusher_gym import PusherGym, PusherGymConfig
from jaxmbrl.envs.reacher import Reacher, ReacherConfig
from jaxmbrl.envs.reacher_planar import ReacherPlanar, ReacherPlanarConfig
from jaxmbrl.envs.wrappers import BatchedEnv, chunked_vmap

_REGISTRY: dict[str, tuple[type[MjxEnv], type[MjxConfig]]] = {
    "half_cheetah": (HalfCheetah, HalfCheetahConfig),
    "hopper": (Hopper, HopperConfig),
    "pusher": (Pusher, PusherConfig),
    "reacher": (Reacher, ReacherConfig),
    "cartpole": (Cartpole, CartpoleConfig),
    # Earlier stand-ins, kept as named variants (not the study's tasks).
    "pusher_gym": (PusherGym, PusherGymConfig),
    "reacher_planar": (ReacherPlanar, ReacherPlanarConfig),
    "cartpole_gear10": (CartpoleGear10, CartpoleGear10Config),
}
# The five tasks of the study (PETS' models), then the variants.
STUDY_ENVS: tuple[str, ...] = ("half_cheetah", "hopper", "pusher", "reacher", "cartpole")
ALL_ENVS: tuple[str, ...] = tuple(_REGISTRY)


def config_for(name: str, **overrides) -> MjxConfig:
    """The config of env ``name`` with ``overrides``; ValueError on unknown names/fields."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}; valid: {', '.join(ALL_ENVS)}")
    config_cls = _REGISTRY[name][1]
    fields = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} config field(s) {unknown}; valid: {', '.join(fields)}")
    return config_cls(**overrides)


def load(name: str, **overrides) -> MjxEnv:
    """Builds environment ``name`` (one of ALL_ENVS) with config fields ``overrides``.

    Args:
      name: environment name, one of ``ALL_ENVS``.
      **overrides: config fields to change (see the env's ``*Config`` dataclass).

    Returns:
      The environment (reset/step are pure and jittable; the env holds no mutable state).

    Raises:
      ValueError: unknown name, unknown field or invalid value.
    """
    config = config_for(name, **overrides)
    return _REGISTRY[name][0](config)


__all__ = [
    "ALL_ENVS",
    "BatchedEnv",
    "Cartpole",
    "CartpoleConfig",
    "CartpoleGear10",
    "CartpoleGear10Config",
    "HalfCheetah",
    "HalfCheetahConfig",
    "Hopper",
    "HopperConfig",
    "MjxConfig",
    "MjxEnv",
    "Pusher",
    "PusherConfig",
    "PusherGym",
    "PusherGymConfig",
    "Reacher",
    "ReacherConfig",
    "ReacherPlanar",
    "ReacherPlanarConfig",
    "STUDY_ENVS",
    "State",
    "chunked_vmap",
    "config_for",
    "load",
]
