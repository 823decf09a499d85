"""Hopper for PETS (Chua et al., NeurIPS 2018) as set up by Zhang et al. 2021.

Gymnasium's hopper.xml (RK4, timestep 0.002) with frame skip 4 (dt 0.008), loaded from the
installed package. Observation (11): [qpos[1:], clip(qvel, -10, 10)]. As in the study:
no termination, 1000 steps, reward = x-velocity + 1 if healthy - 1e-3|a|^2. To keep the
reward a function of (action, next_obs) alone, the x-velocity is next_obs[5] (qvel[0],
clipped to +-10) instead of gymnasium's finite difference of x, and "healthy" is checked
on the observation (gymnasium's z > 0.7, |angle| < 0.2, |qpos[2:], qvel| < 100, with the
clipped qvel: identical unless a joint exceeds 100 rad/s). Reset: defaults + U(+-5e-3).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.assets import gymnasium_model
from jaxmbrl.envs.base import MjxConfig, MjxEnv


@dataclasses.dataclass(frozen=True)
class HopperConfig(MjxConfig):
    episode_length: int = 1000
    frame_skip: int = 4
    forward_reward_weight: float = 1.0
    healthy_reward: float = 1.0
    ctrl_cost_weight: float = 1e-3
    healthy_z_min: float = 0.7
    healthy_angle_max: float = 0.2
    healthy_state_max: float = 100.0
    max_velocity: float = 10.0
    reset_noise_scale: float = 5e-3


class Hopper(MjxEnv):
    name = "hopper"

    def __init__(self, config: HopperConfig = HopperConfig()):
        super().__init__(config)

    def _make_mj_model(self) -> mujoco.MjModel:
        return gymnasium_model("hopper.xml")

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key_qpos, key_qvel = jax.random.split(key)
        m, scale = self.mj_model, self.config.reset_noise_scale
        qpos = m.qpos0 + jax.random.uniform(key_qpos, (m.nq,), minval=-scale, maxval=scale)
        qvel = jax.random.uniform(key_qvel, (m.nv,), minval=-scale, maxval=scale)
        return qpos, qvel

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        del prev_data
        v = self.config.max_velocity
        return jnp.concatenate([data.qpos[1:], jnp.clip(data.qvel, -v, v)])

    def is_healthy(self, obs: jax.Array) -> jax.Array:
        """Gymnasium's health check on observations [..., 11] -> [...] bool."""
        c = self.config
        z, angle = obs[..., 0], obs[..., 1]
        state_ok = jnp.all(jnp.abs(obs[..., 1:]) < c.healthy_state_max, axis=-1)
        return (z > c.healthy_z_min) & (jnp.abs(angle) < c.healthy_angle_max) & state_ok

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs
        c = self.config
        forward = c.forward_reward_weight * next_obs[..., 5]
        alive = c.healthy_reward * self.is_healthy(next_obs).astype(jnp.float32)
        return forward + alive - c.ctrl_cost_weight * jnp.sum(action**2, axis=-1)
