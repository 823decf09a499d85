"""Reacher of PETS (Chua et al., NeurIPS 2018): a 7-DoF arm reaching a 3-D goal.

The task of Zhang et al. 2021. Our MJCF (arm.py's template with the spec below) written
from the published facts of PETS' ``reacher3d.xml`` (kchua/handful-of-trials; mbrl-lib
``mbrl/env/assets``): a PR2-like arm (shoulder pan, shoulder lift, upper-arm roll, elbow
flex, forearm roll, wrist flex, wrist roll) with its gripper, geometry, joint ranges and
damping as published, armature 0.04, no gravity, motors of gear 1 in [-20, 20]; a target
sphere on three unlimited slide joints whose qpos is its world position. RK4 at 0.01 s,
frame skip 2 (dt 0.02), 150 steps, no termination. Visual-only elements and commented-out
geometry are left out.

Observation (17, PETS'): [arm qpos (7), goal (3), arm qvel (7)].
Reward (PETS'): -|ee - goal|^2 - 0.01|a|^2, ee the midpoint of the two finger-tip links
(0.16828 m along the wrist), computed by ``kinematics.forward_kinematics`` from the
predicted joint angles (the simulator's own chain; PETS hand-wrote an equivalent formula).
Reset (PETS'): arm at rest at qpos 0; goal = (0, 0.25, 0) + N(0, 0.1^2) per coordinate.
Model targets: deltas of the arm's qpos and qvel (14); the goal never moves in a trial
(no gravity, no contacts, zero velocity), so ``obs_postprocess`` copies it from the
current observation -- PETS' planner likewise scored predictions against the true goal.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxmbrl.envs import arm, kinematics
from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.base import MjxConfig, MjxEnv

# PETS' reacher3d.xml on the shared arm (arm.py): base at y -0.188, the gripper's palm
# and finger links on the wrist, a target sphere on three unlimited slide joints.
_GRIPPER = """
                      <body name="r_gripper_palm_link">
                        <geom name="pl" type="capsule" fromto="0.05 0 -0.02 0.05 0 0.02"
                              size="0.05"/>
                        <body name="r_gripper_l_finger_link" pos="0.07691 0.03 0">
                          <geom name="gf3" type="capsule" fromto="0 0 0 0.09137 0.00495 0"
                                size="0.01"/>
                          <body name="r_gripper_l_finger_tip_link" pos="0.09137 0.00495 0">
                            <geom name="gf4" type="capsule" fromto="0 0 0 0.09137 0 0"
                                  size="0.01"/>
                          </body>
                        </body>
                        <body name="r_gripper_r_finger_link" pos="0.07691 -0.03 0">
                          <geom name="gf1" type="capsule" fromto="0 0 0 0.09137 -0.00495 0"
                                size="0.01"/>
                          <body name="r_gripper_r_finger_tip_link" pos="0.09137 -0.00495 0">
                            <geom name="gf2" type="capsule" fromto="0 0 0 0.09137 0 0"
                                  size="0.01"/>
                          </body>
                        </body>
                      </body>"""
_TARGET = """
    <body name="target" pos="0 0.25 0">
      <joint name="target_x" type="slide" axis="1 0 0" limited="false" armature="0" damping="0"/>
      <joint name="target_y" type="slide" axis="0 1 0" limited="false" armature="0" damping="0"
             ref="0.25"/>
      <joint name="target_z" type="slide" axis="0 0 1" limited="false" armature="0" damping="0"/>
      <geom name="target" type="sphere" size="0.035"/>
    </body>"""
_ARM = arm.ArmSpec(
    model="pets_reacher3d",
    integrator="RK4",
    geom_defaults='contype="0" conaffinity="0" condim="1" margin="0.002" friction=".5 .1 .1"',
    base_y=-0.188,
    # (range, damping) shoulder to wrist; the two roll joints of the forearm are unlimited.
    joints=(
        ((-2.2854, 1.714602), 10),
        ((-0.5236, 1.3963), 10),
        ((-3.9, 0.8), 0.1),
        ((-2.3213, 0), 1),
        (None, 0.1),
        ((-2.094, 0), 0.1),
        (None, 0.1),
    ),
    forearm_length=0.321,
    wrist_roll="""
                      <geom name="wr" type="capsule" fromto="-0.02 0 0 0.02 0 0" size="0.01"/>""",
    hand=_GRIPPER,
    world="",
    bodies=_TARGET,
)
ARM, GOAL = slice(0, 7), slice(7, 10)  # observation layout; arm qvel is obs[10:17]


@dataclasses.dataclass(frozen=True)
class ReacherConfig(MjxConfig):
    episode_length: int = 150
    frame_skip: int = 2
    timestep: float = 0.01
    max_action: float = 20.0
    ctrl_cost_weight: float = 0.01
    goal_noise_scale: float = 0.1

    def mjcf(self) -> str:
        """The MJCF of this configuration."""
        return arm.mjcf(_ARM, timestep=self.timestep, max_action=self.max_action)


class Reacher(MjxEnv):
    name = "reacher"

    def __init__(self, config: ReacherConfig = ReacherConfig()):
        super().__init__(config)

    @property
    def compiler_options(self) -> dict:
        # The pusher's arm again: with XLA CPU's default fusion emitters a vmapped step at
        # batch 8 took > 20 s (measured: 10 steps not done within 220 s after a 179 s
        # compile) vs 5.5 ms with the legacy emitters (compile 148 s, loaded machine).
        return arm.arm_compiler_options()

    def _make_mj_model(self) -> mujoco.MjModel:
        m = mujoco.MjModel.from_xml_string(self.config.mjcf())
        self.chain = kinematics.make_chain(
            m, "r_wrist_roll_link", ("r_gripper_l_finger_tip_link", "r_gripper_r_finger_tip_link")
        )
        return m

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        m = self.mj_model
        noise = self.config.goal_noise_scale * jax.random.normal(key, (3,))
        qpos = jnp.asarray(m.qpos0, jnp.float32).at[GOAL].add(noise)
        return qpos, jnp.zeros(m.nv)

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        del prev_data
        return jnp.concatenate([data.qpos, data.qvel[ARM]])

    def end_effector(self, obs: jax.Array) -> jax.Array:
        """End-effector position from observations [..., 17] -> [..., 3]."""
        return kinematics.forward_kinematics(self.chain, obs[..., ARM])

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs
        dist2 = jnp.sum((self.end_effector(next_obs) - next_obs[..., GOAL]) ** 2, axis=-1)
        return -dist2 - self.config.ctrl_cost_weight * jnp.sum(action**2, axis=-1)

    def make_target(self, obs: jax.Array, next_obs: jax.Array) -> jax.Array:
        # [arm qpos delta (7), arm qvel delta (7)]: the goal is constant within a trial.
        delta = next_obs - obs
        return jnp.concatenate([delta[..., ARM], delta[..., 10:]], axis=-1)

    def obs_postprocess(self, obs: jax.Array, target: jax.Array) -> jax.Array:
        return jnp.concatenate(
            [obs[..., ARM] + target[..., :7], obs[..., GOAL], obs[..., 10:] + target[..., 7:]],
            axis=-1,
        )
