"""Variant ``pusher_gym``: gymnasium's pusher_v5 with PETS' cost (Chua et al., NeurIPS 2018).

The study's task (Zhang et al. 2021) is ``pusher`` (pusher.py, PETS' own model and obs).

A 7-DoF arm pushes a cylinder to a goal. Model: gymnasium's pusher_v5.xml from the
installed package (the v4 pusher.xml gives the object a mass of ~4e-9 kg, ill-conditioned
in float32; v5 raised its density), frame skip 5 (dt 0.05), 150 steps, no termination.
Observation (23), gymnasium's: [qpos[:7], qvel[:7], tips_arm, object, goal positions],
positions from forward kinematics of the current qpos. Reward, PETS's cost with the goal
read from the observation: -(0.5 |tip - obj|_1 + 1.25 |obj - goal|_1 + 0.1 |a|^2).
Reset as gymnasium: arm at rest, goal at (0, 0), object uniform in [-0.3, 0] x [-0.2, 0.2]
at least 0.17 from the goal, joint velocities U(+-0.005).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.arm import arm_compiler_options
from jaxmbrl.envs.assets import gymnasium_model
from jaxmbrl.envs.base import MjxConfig, MjxEnv

# Rejection sampling with a fixed number of candidates: each is rejected with probability
# ~0.38, so all 32 fail with probability ~4e-14 (then the first candidate is used).
_CANDIDATES = 32


@dataclasses.dataclass(frozen=True)
class PusherGymConfig(MjxConfig):
    episode_length: int = 150
    frame_skip: int = 5
    tip_object_weight: float = 0.5
    object_goal_weight: float = 1.25
    ctrl_cost_weight: float = 0.1
    min_object_goal_distance: float = 0.17
    reset_noise_scale: float = 0.005


class PusherGym(MjxEnv):
    name = "pusher_gym"

    def __init__(self, config: PusherGymConfig = PusherGymConfig()):
        super().__init__(config)

    @property
    def compiler_options(self) -> dict:
        return arm_compiler_options()

    def _make_mj_model(self) -> mujoco.MjModel:
        m = gymnasium_model("pusher_v5.xml")
        self._body_ids = np.array(
            [
                mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b)
                for b in ("tips_arm", "object", "goal")
            ]
        )
        return m

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key_obj, key_qvel = jax.random.split(key)
        m, c = self.mj_model, self.config
        goal = jnp.zeros(2)
        lo, hi = jnp.array([-0.3, -0.2]), jnp.array([0.0, 0.2])
        cands = jax.random.uniform(key_obj, (_CANDIDATES, 2), minval=lo, maxval=hi)
        ok = jnp.linalg.norm(cands - goal, axis=-1) > c.min_object_goal_distance
        obj = cands[jnp.argmax(ok)]
        qpos = jnp.concatenate([jnp.asarray(m.qpos0[:-4]), obj, goal])
        s = c.reset_noise_scale
        qvel = jax.random.uniform(key_qvel, (m.nv,), minval=-s, maxval=s).at[-4:].set(0.0)
        return qpos, qvel

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        del prev_data
        xpos = mjx.kinematics(self.mjx_model, data).xpos[self._body_ids]  # [3, 3]
        return jnp.concatenate([data.qpos[:7], data.qvel[:7], xpos.reshape(-1)])

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs
        c = self.config
        tip, obj, goal = next_obs[..., 14:17], next_obs[..., 17:20], next_obs[..., 20:23]
        cost = c.tip_object_weight * jnp.sum(jnp.abs(tip - obj), axis=-1)
        cost += c.object_goal_weight * jnp.sum(jnp.abs(obj - goal), axis=-1)
        return -(cost + c.ctrl_cost_weight * jnp.sum(action**2, axis=-1))
