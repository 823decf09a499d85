"""Pusher of PETS (Chua et al., NeurIPS 2018): a 7-DoF arm pushes a cylinder to a goal.

The task of Zhang et al. 2021. Our MJCF (below) written from the published facts of
PETS' ``pusher.xml`` (kchua/handful-of-trials; mbrl-lib ``mbrl/env/assets``; it is
gymnasium's v4 pusher.xml with the shoulder-pan range widened to 2.0): the arm, a table
plane, an object (cylinder, radius 0.05, on slide joints y then x; frictionless condim-1
contacts with the arm's tip capsules and the table) and a goal marker on slide joints; no
gravity; armature 0.04; motors in [-2, 2]. Euler at 0.01 s, frame skip 4 (dt 0.04), 150
steps, no termination. Visual-only elements are left out.

Observation (20, PETS'): [arm qpos (7), arm qvel (7), tips_arm position, object position],
positions from forward kinematics of the current qpos. Reward (PETS' planner cost):
-(0.5 |tips_arm - object|_1 + 1.25 |object - goal|_1 + 0.1 |a|^2) with the goal the goal
body's position (0.45, -0.05, -0.323) (its slide joints stay at 0). PETS' env paid that
cost on the state *before* the step; ours pays it on the state after the step, what the
planner optimises (as all our envs). Reset (PETS'): arm at rest, object slide qpos
(y, x) = (-0.25, 0.15) + N(0, 0.025^2) each, i.e. the object near (0.6, -0.3), arm joint
velocities U(+-0.005).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.base import MjxConfig, MjxEnv

_MJCF = """
<mujoco model="pets_pusher">
  <compiler angle="radian" inertiafromgeom="true"/>
  <option timestep="{timestep}" gravity="0 0 0" integrator="Euler"/>
  <default>
    <joint armature="0.04" damping="1" limited="true"/>
    <geom friction=".8 .1 .1" density="300" margin="0.002" condim="1" contype="0"
          conaffinity="0"/>
  </default>
  <worldbody>
    <geom name="table" type="plane" pos="0 0.5 -0.325" size="1 1 0.1" contype="1"
          conaffinity="1"/>
    <body name="r_shoulder_pan_link" pos="0 -0.6 0">
      <geom name="e1" type="sphere" pos="-0.06 0.05 0.2" size="0.05"/>
      <geom name="e2" type="sphere" pos="0.06 0.05 0.2" size="0.05"/>
      <geom name="e1p" type="sphere" pos="-0.06 0.09 0.2" size="0.03"/>
      <geom name="e2p" type="sphere" pos="0.06 0.09 0.2" size="0.03"/>
      <geom name="sp" type="capsule" fromto="0 0 -0.4 0 0 0.2" size="0.1"/>
      <joint name="r_shoulder_pan_joint" type="hinge" axis="0 0 1" range="-2.2854 2.0"
             damping="1"/>
      <body name="r_shoulder_lift_link" pos="0.1 0 0">
        <geom name="sl" type="capsule" fromto="0 -0.1 0 0 0.1 0" size="0.1"/>
        <joint name="r_shoulder_lift_joint" type="hinge" axis="0 1 0" range="-0.5236 1.3963"
               damping="1"/>
        <body name="r_upper_arm_roll_link">
          <geom name="uar" type="capsule" fromto="-0.1 0 0 0.1 0 0" size="0.02"/>
          <joint name="r_upper_arm_roll_joint" type="hinge" axis="1 0 0" range="-1.5 1.7"
                 damping="0.1"/>
          <body name="r_upper_arm_link">
            <geom name="ua" type="capsule" fromto="0 0 0 0.4 0 0" size="0.06"/>
            <body name="r_elbow_flex_link" pos="0.4 0 0">
              <geom name="ef" type="capsule" fromto="0 -0.02 0 0 0.02 0" size="0.06"/>
              <joint name="r_elbow_flex_joint" type="hinge" axis="0 1 0" range="-2.3213 0"
                     damping="0.1"/>
              <body name="r_forearm_roll_link">
                <geom name="fr" type="capsule" fromto="-0.1 0 0 0.1 0 0" size="0.02"/>
                <joint name="r_forearm_roll_joint" type="hinge" axis="1 0 0" range="-1.5 1.5"
                       damping="0.1"/>
                <body name="r_forearm_link">
                  <geom name="fa" type="capsule" fromto="0 0 0 0.291 0 0" size="0.05"/>
                  <body name="r_wrist_flex_link" pos="0.321 0 0">
                    <geom name="wf" type="capsule" fromto="0 -0.02 0 0 0.02 0" size="0.01"/>
                    <joint name="r_wrist_flex_joint" type="hinge" axis="0 1 0" range="-1.094 0"
                           damping="0.1"/>
                    <body name="r_wrist_roll_link">
                      <joint name="r_wrist_roll_joint" type="hinge" axis="1 0 0"
                             range="-1.5 1.5" damping="0.1"/>
                      <body name="tips_arm">
                        <geom name="tip_arml" type="sphere" pos="0.1 -0.1 0" size="0.01"/>
                        <geom name="tip_armr" type="sphere" pos="0.1 0.1 0" size="0.01"/>
                      </body>
                      <geom type="capsule" fromto="0 -0.1 0 0 0.1 0" size="0.02" contype="1"
                            conaffinity="1"/>
                      <geom type="capsule" fromto="0 -0.1 0 0.1 -0.1 0" size="0.02"
                            contype="1" conaffinity="1"/>
                      <geom type="capsule" fromto="0 0.1 0 0.1 0.1 0" size="0.02" contype="1"
                            conaffinity="1"/>
                    </body>
                  </body>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>
    <body name="object" pos="0.45 -0.05 -0.275">
      <geom type="sphere" size="0.05" density="{object_density}" contype="0"/>
      <geom type="cylinder" size="0.05 0.05" density="{object_density}" contype="1"/>
      <joint name="obj_slidey" type="slide" axis="0 1 0" range="-10.3213 10.3" damping="0.5"/>
      <joint name="obj_slidex" type="slide" axis="1 0 0" range="-10.3213 10.3" damping="0.5"/>
    </body>
    <body name="goal" pos="0.45 -0.05 -0.323">
      <geom type="cylinder" size="0.08 0.001" density="0.00001"/>
      <joint name="goal_slidey" type="slide" axis="0 1 0" range="-10.3213 10.3" damping="0.5"/>
      <joint name="goal_slidex" type="slide" axis="1 0 0" range="-10.3213 10.3" damping="0.5"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="r_shoulder_pan_joint" ctrllimited="true" ctrlrange="-2 2"/>
    <motor joint="r_shoulder_lift_joint" ctrllimited="true" ctrlrange="-2 2"/>
    <motor joint="r_upper_arm_roll_joint" ctrllimited="true" ctrlrange="-2 2"/>
    <motor joint="r_elbow_flex_joint" ctrllimited="true" ctrlrange="-2 2"/>
    <motor joint="r_forearm_roll_joint" ctrllimited="true" ctrlrange="-2 2"/>
    <motor joint="r_wrist_flex_joint" ctrllimited="true" ctrlrange="-2 2"/>
    <motor joint="r_wrist_roll_joint" ctrllimited="true" ctrlrange="-2 2"/>
  </actuator>
</mujoco>
"""


def arm_compiler_options() -> dict:
    """XLA options for programs that step MJX's 7-DoF arms (both pushers, the reacher).

    XLA CPU's (new) fusion emitters generate pathologically slow code for MJX's 11-deep
    kinematic chain of the pusher arm: measured 4.7 s per vmapped step at batch 8 (compile
    68 s) vs 1.8 ms (compile 10 s) with the legacy emitters. Other envs run equally fast
    with either, and MLPs run 1.7x slower with the legacy ones, so the option is per env.
    """
    # jax 0.11's XLA no longer has the option (compiling with it fails): not set there;
    # the arms' CPU speed on jax 0.11 is not measured yet (BUILD_NOTES, known limits).
    if jax.default_backend() == "cpu" and jax.__version_info__ < (0, 11):
        return {"xla_cpu_use_fusion_emitters": False}
    return {}


@dataclasses.dataclass(frozen=True)
class PusherConfig(MjxConfig):
    episode_length: int = 150
    frame_skip: int = 4
    timestep: float = 0.01
    object_density: float = 1e-5
    tip_object_weight: float = 0.5
    object_goal_weight: float = 1.25
    ctrl_cost_weight: float = 0.1
    object_start_yx: tuple[float, float] = (-0.25, 0.15)
    object_noise_scale: float = 0.025
    reset_noise_scale: float = 0.005

    def mjcf(self) -> str:
        """The MJCF of this configuration."""
        return _MJCF.format(timestep=self.timestep, object_density=self.object_density)


class Pusher(MjxEnv):
    name = "pusher"

    def __init__(self, config: PusherConfig = PusherConfig()):
        super().__init__(config)

    @property
    def compiler_options(self) -> dict:
        return arm_compiler_options()

    def _make_mj_model(self) -> mujoco.MjModel:
        m = mujoco.MjModel.from_xml_string(self.config.mjcf())
        body = lambda name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
        self._body_ids = np.array([body("tips_arm"), body("object")])
        data = mujoco.MjData(m)
        mujoco.mj_kinematics(m, data)  # at qpos0: the goal's slide joints at 0
        self.goal = np.asarray(data.xpos[body("goal")], np.float32)
        return m

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        key_obj, key_qvel = jax.random.split(key)
        m, c = self.mj_model, self.config
        obj = jnp.asarray(c.object_start_yx) + c.object_noise_scale * jax.random.normal(
            key_obj, (2,)
        )
        qpos = jnp.asarray(m.qpos0, jnp.float32).at[-4:-2].set(obj).at[-2:].set(0.0)
        s = c.reset_noise_scale
        qvel = jax.random.uniform(key_qvel, (m.nv,), minval=-s, maxval=s).at[-4:].set(0.0)
        return qpos, qvel

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        del prev_data
        xpos = mjx.kinematics(self.mjx_model, data).xpos[self._body_ids]  # [2, 3]
        return jnp.concatenate([data.qpos[:7], data.qvel[:7], xpos.reshape(-1)])

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs
        c = self.config
        tip, obj = next_obs[..., 14:17], next_obs[..., 17:20]
        cost = c.tip_object_weight * jnp.sum(jnp.abs(tip - obj), axis=-1)
        cost += c.object_goal_weight * jnp.sum(jnp.abs(obj - self.goal), axis=-1)
        return -(cost + c.ctrl_cost_weight * jnp.sum(action**2, axis=-1))
