"""PETS' 7-DoF PR2-like arm (Chua et al., NeurIPS 2018): one MJCF template, two tasks.

PETS' ``reacher3d.xml`` and ``pusher.xml`` (kchua/handful-of-trials; mbrl-lib
``mbrl/env/assets``) are near copies of one arm: shoulder pan, shoulder lift, upper-arm
roll, elbow flex, forearm roll, wrist flex and wrist roll, the same links and geometry,
armature 0.04, no gravity, one motor per joint. What differs -- the base position, joint
ranges and damping, the forearm capsule's length, what the wrist carries (the reacher's
gripper, the pusher's tip capsules) and the world around the arm (a target; a table, an
object and a goal) -- is an ``ArmSpec``; ``mjcf`` writes the model. The reacher and the
pusher (reacher.py, pusher.py) hold their specs and document their published facts.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

# The arm's joints, shoulder to wrist: (name, axis). Every motor has gear 1.
JOINTS = (
    ("r_shoulder_pan_joint", "0 0 1"),
    ("r_shoulder_lift_joint", "0 1 0"),
    ("r_upper_arm_roll_joint", "1 0 0"),
    ("r_elbow_flex_joint", "0 1 0"),
    ("r_forearm_roll_joint", "1 0 0"),
    ("r_wrist_flex_joint", "0 1 0"),
    ("r_wrist_roll_joint", "1 0 0"),
)


class ArmSpec(NamedTuple):
    """What one task's arm model sets; XML fragments are inserted verbatim.

    Attributes:
      model: the MJCF model name.
      integrator: MuJoCo's integrator name ('RK4', 'Euler').
      geom_defaults: attributes of the default geom class.
      base_y: y of the shoulder (the arm's base) in the world.
      joints: per joint of ``JOINTS``, (range, damping); range None: unlimited.
      forearm_length: length of the forearm capsule (the wrist sits at 0.321 in both).
      wrist_roll: the wrist-roll link's geoms, placed before its joint.
      hand: the bodies and geoms the wrist roll link carries after its joint.
      world: world geoms placed before the arm.
      bodies: world bodies placed after the arm.
    """

    model: str
    integrator: str
    geom_defaults: str
    base_y: float
    joints: tuple[tuple[tuple[float, float] | None, float], ...]
    forearm_length: float
    wrist_roll: str
    hand: str
    world: str
    bodies: str


_TEMPLATE = """
<mujoco model="{model}">
  <compiler angle="radian" inertiafromgeom="true"/>
  <option timestep="{timestep}" gravity="0 0 0" integrator="{integrator}"/>
  <default>
    <joint armature="0.04" damping="1" limited="true"/>
    <geom {geom_defaults}/>
  </default>
  <worldbody>{world}
    <body name="r_shoulder_pan_link" pos="0 {base_y} 0">
      <geom name="e1" type="sphere" pos="-0.06 0.05 0.2" size="0.05"/>
      <geom name="e2" type="sphere" pos="0.06 0.05 0.2" size="0.05"/>
      <geom name="e1p" type="sphere" pos="-0.06 0.09 0.2" size="0.03"/>
      <geom name="e2p" type="sphere" pos="0.06 0.09 0.2" size="0.03"/>
      <geom name="sp" type="capsule" fromto="0 0 -0.4 0 0 0.2" size="0.1"/>
      {joint0}
      <body name="r_shoulder_lift_link" pos="0.1 0 0">
        <geom name="sl" type="capsule" fromto="0 -0.1 0 0 0.1 0" size="0.1"/>
        {joint1}
        <body name="r_upper_arm_roll_link">
          <geom name="uar" type="capsule" fromto="-0.1 0 0 0.1 0 0" size="0.02"/>
          {joint2}
          <body name="r_upper_arm_link">
            <geom name="ua" type="capsule" fromto="0 0 0 0.4 0 0" size="0.06"/>
            <body name="r_elbow_flex_link" pos="0.4 0 0">
              <geom name="ef" type="capsule" fromto="0 -0.02 0 0 0.02 0" size="0.06"/>
              {joint3}
              <body name="r_forearm_roll_link">
                <geom name="fr" type="capsule" fromto="-0.1 0 0 0.1 0 0" size="0.02"/>
                {joint4}
                <body name="r_forearm_link">
                  <geom name="fa" type="capsule" fromto="0 0 0 {forearm_length} 0 0" size="0.05"/>
                  <body name="r_wrist_flex_link" pos="0.321 0 0">
                    <geom name="wf" type="capsule" fromto="0 -0.02 0 0 0.02 0" size="0.01"/>
                    {joint5}
                    <body name="r_wrist_roll_link">{wrist_roll}
                      {joint6}{hand}
                    </body>
                  </body>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>{bodies}
  </worldbody>
  <actuator>{motors}
  </actuator>
</mujoco>
"""


def _joint(name: str, axis: str, limits: tuple[float, float] | None, damping: float) -> str:
    span = 'limited="false"' if limits is None else f'range="{limits[0]} {limits[1]}"'
    return f'<joint name="{name}" type="hinge" axis="{axis}" {span} damping="{damping}"/>'


def mjcf(spec: ArmSpec, *, timestep: float, max_action: float) -> str:
    """The MJCF of the arm of ``spec``.

    Args:
      spec: the task's arm (see ``ArmSpec``).
      timestep: physics timestep in seconds.
      max_action: every motor's control range is [-max_action, max_action].
    """
    if len(spec.joints) != len(JOINTS):
        raise ValueError(f"{spec.model}: {len(spec.joints)} joint specs for {len(JOINTS)} joints")
    joints = {
        f"joint{i}": _joint(name, axis, *spec.joints[i]) for i, (name, axis) in enumerate(JOINTS)
    }
    motors = "".join(
        f'\n    <motor joint="{name}" ctrllimited="true" ctrlrange="-{max_action} {max_action}"/>'
        for name, _ in JOINTS
    )
    fields = spec._asdict()
    del fields["joints"]
    return _TEMPLATE.format(timestep=timestep, motors=motors, **joints, **fields)


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
