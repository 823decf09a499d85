"""Variant ``cartpole_gear10``: jaxmbrl's earlier cart-pole, not PETS' model (Chua et al. 2018).

The study's task (Zhang et al. 2021) is ``cartpole`` (cartpole.py, PETS' model). This is
our own lighter MJCF (below): a 1 kg box cart on a +-2.5 m slider, a 0.1 kg pole of
length 0.6 hanging down at theta = 0, no joint damping, semi-implicit Euler at 0.01 s x
frame skip 5 (dt 0.05), force = gear 10 x action, action in [-3, 3]. Observation, reward,
reset and model pre-processing are ``Cartpole``'s (PETS'). Kept because earlier results
and the seeded learning thresholds of earlier commits were measured on it.
"""

from __future__ import annotations

import dataclasses

from jaxmbrl.envs._mjx import mujoco
from jaxmbrl.envs.base import MjxConfig
from jaxmbrl.envs.cartpole import Cartpole

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
class CartpoleGear10Config(MjxConfig):
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


class CartpoleGear10(Cartpole):
    """``Cartpole`` (observation, reward, reset, pre-processing) on the MJCF above."""

    name = "cartpole_gear10"

    def __init__(self, config: CartpoleGear10Config = CartpoleGear10Config()):
        super().__init__(config)

    def _make_mj_model(self) -> mujoco.MjModel:
        return mujoco.MjModel.from_xml_string(self.config.mjcf())
