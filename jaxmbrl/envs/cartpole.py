"""Cart-pole swing-up as in PETS (Chua et al., NeurIPS 2018), used by Zhang et al. 2021.

Our own MJCF (below): a cart on a +-2.5 m slider and a hinged uniform pole of length 0.6
that starts hanging down (theta = 0). Timestep 0.01 x frame skip 5 = dt 0.05, 200 steps,
no termination, action in [-3, 3] (force = gear 10 x action, N: strong enough that a
planner swings the pole up in ~15 steps, as in PETS' cart-pole whose motor has gear 100
on a far heavier cart). Observation (4):
[x, theta, xdot, thetadot]. PETS reward: exp(-|ee - (0, L)|^2 / L^2) - 0.01|a|^2 with
L = 0.6 and the pole tip ee = (x - L sin theta, -L cos theta). Reset: qpos, qvel ~
N(0, 0.1) as PETS. The model input replaces theta by its sin and cos (PETS).
tests/test_envs.py checks with MuJoCo C that an energy-pumping controller within the
action bounds brings the tip upright well within 200 steps.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.base import MjxConfig, MjxEnv

_MJCF = """
<mujoco model="cartpole_swingup">
  <compiler angle="radian" inertiafromgeom="true"/>
  <option timestep="{timestep}" gravity="0 0 -9.81" integrator="Euler"/>
  <default>
    <geom contype="0" conaffinity="0"/>
  </default>
  <worldbody>
    <geom name="rail" type="capsule" fromto="-{rail} 0 0 {rail} 0 0" size="0.02"/>
    <body name="cart">
      <joint name="slider" type="slide" axis="1 0 0" limited="true" range="-{rail} {rail}"
             damping="{cart_damping}"/>
      <geom name="cart" type="box" size="0.1 0.05 0.05" mass="{cart_mass}"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="{pole_damping}"/>
        <geom name="pole" type="capsule" fromto="0 0 0 0 0 -{pole_length}" size="0.02"
              mass="{pole_mass}"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="force" joint="slider" gear="{gear}" ctrllimited="true"
           ctrlrange="-{max_action} {max_action}"/>
  </actuator>
</mujoco>
"""


@dataclasses.dataclass(frozen=True)
class CartpoleConfig(MjxConfig):
    episode_length: int = 200
    frame_skip: int = 5
    timestep: float = 0.01
    pole_length: float = 0.6
    pole_mass: float = 0.1
    cart_mass: float = 1.0
    gear: float = 10.0
    max_action: float = 3.0
    rail: float = 2.5
    cart_damping: float = 0.0
    pole_damping: float = 0.0
    ctrl_cost_weight: float = 0.01
    reset_noise_scale: float = 0.1

    def mjcf(self) -> str:
        """The MJCF of this configuration."""
        fields = dataclasses.asdict(self)
        return _MJCF.format(**{k: fields[k] for k in _MJCF_FIELDS})


_MJCF_FIELDS = (
    "timestep", "pole_length", "pole_mass", "cart_mass", "gear", "max_action", "rail",
    "cart_damping", "pole_damping",
)  # fmt: skip


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
        """Pole tip (x, z) from observations [..., 4] -> [..., 2]."""
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
