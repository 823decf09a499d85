"""HalfCheetah as in PETS (Chua et al., NeurIPS 2018), the variant used by Zhang et al. 2021.

Gymnasium's half_cheetah.xml (loaded from the installed package), frame skip 5 (dt 0.05).
Observation (18): [(x_after - x_before) / dt, qpos[1:], qvel]; reward = obs'[0] - 0.1|a|^2;
no termination; 1000 steps; reset qpos, qvel = defaults + N(0, 0.001) as PETS.
PETS model input replaces the root angle by its sin and cos and drops the x-velocity;
the target keeps the x-velocity absolute and takes deltas of the rest.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.assets import gymnasium_model
from jaxmbrl.envs.base import MjxConfig, MjxEnv


@dataclasses.dataclass(frozen=True)
class HalfCheetahConfig(MjxConfig):
    episode_length: int = 1000
    frame_skip: int = 5
    ctrl_cost_weight: float = 0.1
    reset_noise_scale: float = 0.001


class HalfCheetah(MjxEnv):
    name = "half_cheetah"

    def __init__(self, config: HalfCheetahConfig = HalfCheetahConfig()):
        super().__init__(config)

    def _make_mj_model(self) -> mujoco.MjModel:
        return gymnasium_model("half_cheetah.xml")

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key_qpos, key_qvel = jax.random.split(key)
        scale = self.config.reset_noise_scale
        qpos = self.mj_model.qpos0 + scale * jax.random.normal(key_qpos, (self.mj_model.nq,))
        qvel = scale * jax.random.normal(key_qvel, (self.mj_model.nv,))
        return qpos, qvel

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        x_velocity = (data.qpos[:1] - prev_data.qpos[:1]) / self.dt
        return jnp.concatenate([x_velocity, data.qpos[1:], data.qvel])

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs
        return next_obs[..., 0] - self.config.ctrl_cost_weight * jnp.sum(action**2, axis=-1)

    def obs_preprocess(self, obs: jax.Array) -> jax.Array:
        # [rootz, sin(rooty), cos(rooty), joint angles, qvel]: 18 features.
        angle = obs[..., 2:3]
        return jnp.concatenate([obs[..., 1:2], jnp.sin(angle), jnp.cos(angle), obs[..., 3:]], -1)

    def make_target(self, obs: jax.Array, next_obs: jax.Array) -> jax.Array:
        return jnp.concatenate([next_obs[..., :1], next_obs[..., 1:] - obs[..., 1:]], axis=-1)

    def obs_postprocess(self, obs: jax.Array, target: jax.Array) -> jax.Array:
        return jnp.concatenate([target[..., :1], obs[..., 1:] + target[..., 1:]], axis=-1)
