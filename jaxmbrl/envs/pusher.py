"""Pusher of PETS (Chua et al., NeurIPS 2018): a 7-DoF arm pushes a cylinder to a goal.

The task of Zhang et al. 2021. Our MJCF (arm.py's template with the spec below) from
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

from jaxmbrl.envs import arm
from jaxmbrl.envs._mjx import mjx, mujoco
from jaxmbrl.envs.base import MjxConfig, MjxEnv

# PETS' pusher.xml on the shared arm (arm.py): base at y -0.6, the tips_arm body and three
# contact capsules on the wrist, a table plane, the object and the goal marker.
_TIPS = """
                      <body name="tips_arm">
                        <geom name="tip_arml" type="sphere" pos="0.1 -0.1 0" size="0.01"/>
                        <geom name="tip_armr" type="sphere" pos="0.1 0.1 0" size="0.01"/>
                      </body>
                      <geom type="capsule" fromto="0 -0.1 0 0 0.1 0" size="0.02" contype="1"
                            conaffinity="1"/>
                      <geom type="capsule" fromto="0 -0.1 0 0.1 -0.1 0" size="0.02"
                            contype="1" conaffinity="1"/>
                      <geom type="capsule" fromto="0 0.1 0 0.1 0.1 0" size="0.02" contype="1"
                            conaffinity="1"/>"""
_TABLE = """
    <geom name="table" type="plane" pos="0 0.5 -0.325" size="1 1 0.1" contype="1"
          conaffinity="1"/>"""
_OBJECT_AND_GOAL = """
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
    </body>"""
_ARM = arm.ArmSpec(
    model="pets_pusher",
    integrator="Euler",
    geom_defaults='friction=".8 .1 .1" density="300" margin="0.002" condim="1" contype="0" '
    'conaffinity="0"',
    base_y=-0.6,
    # (range, damping) shoulder to wrist: gymnasium's v4 values, the pan range widened.
    joints=(
        ((-2.2854, 2.0), 1),
        ((-0.5236, 1.3963), 1),
        ((-1.5, 1.7), 0.1),
        ((-2.3213, 0), 0.1),
        ((-1.5, 1.5), 0.1),
        ((-1.094, 0), 0.1),
        ((-1.5, 1.5), 0.1),
    ),
    forearm_length=0.291,
    wrist_roll="",
    hand=_TIPS,
    world=_TABLE,
    bodies=_OBJECT_AND_GOAL,
)
_MAX_ACTION = 2.0  # motors in [-2, 2]


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
        spec = _ARM._replace(bodies=_ARM.bodies.format(object_density=self.object_density))
        return arm.mjcf(spec, timestep=self.timestep, max_action=_MAX_ACTION)


class Pusher(MjxEnv):
    name = "pusher"

    def __init__(self, config: PusherConfig = PusherConfig()):
        super().__init__(config)

    @property
    def compiler_options(self) -> dict:
        return arm.arm_compiler_options()

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
