"""Cart-pole swing-up of PETS (Chua et al., NeurIPS 2018), the task of Zhang et al. 2021.

Our MJCF (below) written from the published facts of PETS' ``cartpole.xml``
(kchua/handful-of-trials, mbrl-lib ``mbrl/env/assets/cartpole.xml``): a capsule cart
(radius 0.1, half-length 0.1) on a +-2.5 m slider, a capsule pole (radius 0.049) hinged at
the cart and hanging down at theta = 0 to (0.001, 0, -0.6); masses from geometry at
MuJoCo's default density 1000 (cart 10.47 kg, pole 5.02 kg); damping 1 on both joints;
motor gear 100 on the slider, action in [-3, 3]; RK4 at 0.02 s, frame skip 2 (dt 0.04);
200 steps; no termination. Observation (4): [x, theta, xdot, thetadot].
Reward (PETS): exp(-|tip - (0, L)|^2 / L^2) - 0.01|a|^2, L = 0.6, tip = (x - L sin theta,
-L cos theta). Reset: qpos, qvel ~ N(0, 0.1). The model input replaces theta by its sin
and cos (PETS). Visual-only elements (textures, materials, colours) are left out.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.base import MjxConfig, MjxEnv

_MJCF = """
<mujoco model="pets_cartpole">
  <compiler angle="radian" inertiafromgeom="true"/>
  <option timestep="{timestep}" gravity="0 0 -9.81" integrator="RK4"/>
  <default>
    <joint damping="{joint_damping}" armature="0"/>
    <geom contype="0" conaffinity="0" density="1000"/>
  </default>
  <worldbody>
    <geom name="rail" type="capsule" fromto="-3 0 0 3 0 0" size="0.02"/>
    <body name="cart">
      <joint name="slider" type="slide" axis="1 0 0" limited="true" range="-{rail} {rail}"/>
      <geom name="cart" type="capsule" fromto="-0.1 0 0 0.1 0 0" size="0.1"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" limited="false"/>
        <geom name="pole" type="capsule" fromto="0 0 0 0.001 0 -{pole_length}" size="0.049"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="slide" joint="slider" gear="{gear}" ctrllimited="true"
           ctrlrange="-{max_action} {max_action}"/>
  </actuator>
</mujoco>
"""
_MJCF_FIELDS = ("timestep", "joint_damping", "rail", "pole_length", "gear", "max_action")


@dataclasses.dataclass(frozen=True)
class CartpoleConfig(MjxConfig):
    episode_length: int = 200
    frame_skip: int = 2
    timestep: float = 0.02
    pole_length: float = 0.6
    gear: float = 100.0
    max_action: float = 3.0
    rail: float = 2.5
    joint_damping: float = 1.0
    ctrl_cost_weight: float = 0.01
    reset_noise_scale: float = 0.1

    def mjcf(self) -> str:
        """The MJCF of this configuration."""
        fields = dataclasses.asdict(self)
        return _MJCF.format(**{k: fields[k] for k in _MJCF_FIELDS})


class Cartpole(MjxEnv):
    name = "cartpole"

    def __init__(self, config: CartpoleConfig = CartpoleConfig()):
        super().__init__(config)

    def _make_mj_model(self) -> mujoco.MjModel:
        return mujoco.MjModel.from_xml_string(self.config.mjcf())

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key_qpos, key_qvel = jax.random.split(key)
        s = self.config.reset_noise_scale
        return s * jax.random.normal(key_qpos, (2,)), s * jax.random.normal(key_qvel, (2,))

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        del prev_data
        return jnp.concatenate([data.qpos, data.qvel])

    def tip_position(self, obs: jax.Array) -> jax.Array:
        """Pole tip (x, z) from observations [..., 4] -> [..., 2] (PETS' formula)."""
        length, x, theta = self.config.pole_length, obs[..., 0], obs[..., 1]
        return jnp.stack([x - length * jnp.sin(theta), -length * jnp.cos(theta)], axis=-1)

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs
        length = self.config.pole_length
        goal = jnp.array([0.0, length])
        dist2 = jnp.sum((self.tip_position(next_obs) - goal) ** 2, axis=-1)
        ctrl = self.config.ctrl_cost_weight * jnp.sum(action**2, axis=-1)
        return jnp.exp(-dist2 / length**2) - ctrl

    def obs_preprocess(self, obs: jax.Array) -> jax.Array:
        # [sin theta, cos theta, x, xdot, thetadot]
        theta = obs[..., 1:2]
        return jnp.concatenate([jnp.sin(theta), jnp.cos(theta), obs[..., :1], obs[..., 2:]], -1)
