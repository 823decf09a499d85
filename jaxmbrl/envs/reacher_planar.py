"""Variant ``reacher_planar``: gymnasium's 2-DoF reacher, not the task of PETS (Chua et al. 2018).

The study's reacher (Zhang et al. 2021) is ``reacher`` (reacher.py): PETS' 7-DoF arm
reaching a 3-D goal. This is gymnasium's 2-DoF planar reacher.xml (from the installed
package), with the study's 150 steps, frame skip 2 (dt 0.02) and no termination.
Observation (10), gymnasium's: [cos q, sin q, target xy, qdot, (fingertip - target)_xy],
positions from forward kinematics of the current qpos. Reward, gymnasium's:
-|fingertip - target|_2 - |a|^2, read from next_obs[8:10]. Reset as gymnasium: joints
U(+-0.1), target uniform in the disc of radius 0.2, joint velocities U(+-0.005).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.assets import gymnasium_model
from jaxmbrl.envs.base import MjxConfig, MjxEnv

# Rejection sampling with a fixed number of candidates: each is rejected with probability
# 1 - pi/4, so all 32 fail with probability ~5e-22 (then the first candidate is used).
_CANDIDATES = 32


@dataclasses.dataclass(frozen=True)
class ReacherPlanarConfig(MjxConfig):
    episode_length: int = 150
    frame_skip: int = 2
    dist_weight: float = 1.0
    ctrl_cost_weight: float = 1.0
    goal_radius: float = 0.2
    reset_noise_scale: float = 0.1


class ReacherPlanar(MjxEnv):
    name = "reacher_planar"

    def __init__(self, config: ReacherPlanarConfig = ReacherPlanarConfig()):
        super().__init__(config)

    def _make_mj_model(self) -> mujoco.MjModel:
        m = gymnasium_model("reacher.xml")
        self._body_ids = np.array(
            [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in ("fingertip", "target")]
        )
        return m

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key_qpos, key_goal, key_qvel = jax.random.split(key, 3)
        m, c = self.mj_model, self.config
        s = c.reset_noise_scale
        qpos = m.qpos0 + jax.random.uniform(key_qpos, (m.nq,), minval=-s, maxval=s)
        r = c.goal_radius
        cands = jax.random.uniform(key_goal, (_CANDIDATES, 2), minval=-r, maxval=r)
        goal = cands[jnp.argmax(jnp.linalg.norm(cands, axis=-1) < r)]
        qpos = qpos.at[-2:].set(goal)
        qvel = jax.random.uniform(key_qvel, (m.nv,), minval=-0.005, maxval=0.005).at[-2:].set(0.0)
        return qpos, qvel

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        del prev_data
        xpos = mjx.kinematics(self.mjx_model, data).xpos[self._body_ids]
        theta = data.qpos[:2]
        return jnp.concatenate(
            [
                jnp.cos(theta),
                jnp.sin(theta),
                data.qpos[2:],
                data.qvel[:2],
                xpos[0, :2] - xpos[1, :2],
            ]
        )

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs
        c = self.config
        dist = jnp.linalg.norm(next_obs[..., 8:10], axis=-1)
        return -c.dist_weight * dist - c.ctrl_cost_weight * jnp.sum(action**2, axis=-1)
