"""The study's tasks on PETS' models (Chua et al. 2018; Zhang et al. 2021): sizes, the
published facts of each model, rewards checked against MuJoCo C's kinematics, resets, and
that MJX really integrates with RK4 where PETS' models ask for it.

Physics parity (MJX vs MuJoCo C, one step and open loop) for every model is in
tests/test_envs.py. Environments and their jit(reset)/jit(step) come from
tests/env_programs.py, shared with test_envs.py, so in one pytest process nothing here
compiles an env program again; the only program of its own is the Euler cartpole's step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from env_programs import compiled, loaded

from jaxmbrl import envs

# Task table of the study / PETS: (steps per trial, observation size, action size, dt).
STUDY_TABLE = {
    "half_cheetah": (1000, 18, 6, 0.05),
    "hopper": (1000, 11, 3, 0.008),
    "pusher": (150, 20, 7, 0.04),
    "reacher": (150, 17, 7, 0.02),
    "cartpole": (200, 4, 1, 0.04),
}
RK4 = mujoco.mjtIntegrator.mjINT_RK4


def test_study_envs_match_the_study_table():
    assert envs.STUDY_ENVS == tuple(STUDY_TABLE)
    assert set(envs.STUDY_ENVS) < set(envs.ALL_ENVS)
    for name, (length, obs_size, action_size, dt) in STUDY_TABLE.items():
        env = loaded(name)
        got = (env.episode_length, env.observation_size, env.action_size)
        assert got == (length, obs_size, action_size), name
        assert env.dt == pytest.approx(dt), name


def test_published_model_facts():
    cartpole = loaded("cartpole")
    m = cartpole.mj_model
    assert m.opt.integrator == RK4 and m.opt.timestep == pytest.approx(0.02)
    assert cartpole.config.frame_skip == 2
    assert m.actuator_gear[0, 0] == 100 and np.all(m.actuator_ctrlrange == [[-3, 3]])
    np.testing.assert_allclose(m.jnt_range[0], [-2.5, 2.5])
    assert m.jnt_limited[0] and not m.jnt_limited[1]
    np.testing.assert_allclose(m.dof_damping, [1.0, 1.0])
    # Capsule masses at density 1000: cart r 0.1, half-length 0.1; pole r 0.049, length 0.6.
    capsule = lambda r, length: 1000 * np.pi * r**2 * (length + 4 * r / 3)
    np.testing.assert_allclose(m.body_mass[1:], [capsule(0.1, 0.2), capsule(0.049, 0.6)], 1e-4)

    reacher = loaded("reacher")
    m = reacher.mj_model
    assert m.opt.integrator == RK4 and m.opt.timestep == pytest.approx(0.01)
    assert np.all(m.opt.gravity == 0) and reacher.config.frame_skip == 2
    assert np.all(m.actuator_ctrlrange == [-20, 20])
    np.testing.assert_allclose(m.dof_damping[:7], [10, 10, 0.1, 1, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(m.dof_armature[:7], 0.04)

    pusher = loaded("pusher")
    m = pusher.mj_model
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    assert m.opt.timestep == pytest.approx(0.01) and pusher.config.frame_skip == 4
    assert np.all(m.opt.gravity == 0) and np.all(m.actuator_ctrlrange == [-2, 2])
    np.testing.assert_allclose(m.jnt_range[0], [-2.2854, 2.0])  # PETS' widened pan range
    np.testing.assert_allclose(pusher.goal, [0.45, -0.05, -0.323], atol=1e-6)


def _random_arm_qpos(env, rng, n):
    """Joint angles over (and 0.2 rad beyond) each limited joint's range; +-pi if unlimited."""
    m = env.mj_model
    low = np.where(m.jnt_limited[:7], m.jnt_range[:7, 0] - 0.2, -np.pi)
    high = np.where(m.jnt_limited[:7], m.jnt_range[:7, 1] + 0.2, np.pi)
    return rng.uniform(low, high, (n, 7))


def _c_positions(model, qpos, bodies):
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    return [data.xpos[model.body(b).id].copy() for b in bodies]


def test_reacher_end_effector_and_goal_match_mujoco_c():
    env = loaded("reacher")
    rng = np.random.default_rng(0)
    arm = _random_arm_qpos(env, rng, 64)
    goal = env.mj_model.qpos0[7:] + rng.normal(0, 0.1, (64, 3))
    obs = np.concatenate([arm, goal, rng.normal(size=(64, 7))], -1).astype(np.float32)
    ee = np.asarray(env.end_effector(obs.reshape(8, 8, 17))).reshape(64, 3)  # batch dims
    for i in range(64):
        left, right, target = _c_positions(
            env.mj_model,
            np.concatenate([arm[i], goal[i]]),
            ("r_gripper_l_finger_tip_link", "r_gripper_r_finger_tip_link", "target"),
        )
        np.testing.assert_allclose(ee[i], (left + right) / 2, atol=2e-6)
        np.testing.assert_allclose(obs[i, 7:10], target, atol=1e-6)  # goal qpos = position
    # The fingertips are 0.16828 m beyond the wrist along the gripper (PETS' last link).
    wrist = _c_positions(env.mj_model, np.concatenate([arm[0], goal[0]]), ("r_wrist_roll_link",))
    assert np.linalg.norm(ee[0] - wrist[0]) == pytest.approx(0.16828, abs=1e-5)


def test_reacher_reward_is_minus_squared_distance_and_action_cost():
    env = loaded("reacher")
    rng = np.random.default_rng(1)
    arm = _random_arm_qpos(env, rng, 4)
    offsets = np.array([[0.0, 0, 0], [0.1, 0, 0], [0, -0.2, 0.1], [0.3, 0.4, 0]])
    actions = np.array([np.zeros(7), np.zeros(7), np.full(7, 2.0), np.arange(7.0)])
    obs = []
    for q, offset in zip(arm, offsets, strict=True):
        left, right = _c_positions(
            env.mj_model,
            np.concatenate([q, [0, 0.25, 0]]),
            ("r_gripper_l_finger_tip_link", "r_gripper_r_finger_tip_link"),
        )
        obs.append(np.concatenate([q, (left + right) / 2 + offset, np.zeros(7)]))
    obs = np.array(obs, np.float32)
    expected = -np.sum(offsets**2, -1) - 0.01 * np.sum(actions**2, -1)
    got = env.reward_fn(obs, actions.astype(np.float32), obs)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_reacher_targets_keep_the_goal_fixed():
    env = loaded("reacher")
    rng = np.random.default_rng(2)
    obs, next_obs = rng.normal(size=(2, 5, 17)).astype(np.float32)
    next_obs[:, 7:10] = obs[:, 7:10]
    target = env.make_target(obs, next_obs)
    assert target.shape == (5, 14) and env.target_size == 14
    np.testing.assert_allclose(env.obs_postprocess(obs, target), next_obs, atol=1e-6)
    # Any prediction leaves the goal where it was.
    moved = env.obs_postprocess(obs, rng.normal(size=(5, 14)).astype(np.float32))
    np.testing.assert_array_equal(moved[:, 7:10], obs[:, 7:10])


def _resets(name, n):
    """obs, qpos, qvel [n, ...] of n resets from split keys, by the env's shared jit(reset).

    For the pusher 1000 calls cost 2.7 CPU-s, its own jit(vmap(reset)) 9.3 CPU-s to compile.
    """
    _, reset, _ = compiled(name)
    states = [reset(key) for key in jax.random.split(jax.random.key(0), n)]
    fields = (lambda s: s.obs, lambda s: s.data.qpos, lambda s: s.data.qvel)
    return (np.stack([np.asarray(field(s)) for s in states]) for field in fields)


def test_reacher_reset_is_the_arm_at_rest_and_a_gaussian_goal():
    # jit(vmap(reset)) here: the reacher's reset compiles in ~1.4 CPU-s, less than 2000
    # calls of the shared jit(reset) cost (the pusher's, with MJX kinematics, the reverse).
    env = loaded("reacher")
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), 2000))
    obs = np.asarray(states.obs)
    assert np.all(obs[:, :7] == 0) and np.all(obs[:, 10:] == 0)
    assert np.all(np.asarray(states.data.qvel) == 0)
    goal = obs[:, 7:10]
    np.testing.assert_allclose(goal.mean(0), [0, 0.25, 0], atol=0.01)  # 5 sigma of the mean
    np.testing.assert_allclose(goal.std(0), 0.1, rtol=0.08)


def test_pusher_observation_reward_and_reset():
    env = loaded("pusher")
    obs, qpos, qvel = _resets("pusher", 1000)
    assert np.all(qpos[:, :7] == 0) and np.all(qpos[:, -2:] == 0)
    assert np.all(np.abs(qvel[:, :7]) <= 0.005) and np.all(qvel[:, 7:] == 0)
    # Object slide qpos is (y, x) = (-0.25, 0.15) + N(0, 0.025^2): world (0.6, -0.3).
    np.testing.assert_allclose(obs[:, 17:20].mean(0), [0.6, -0.3, -0.275], atol=0.004)
    np.testing.assert_allclose(obs[:, 17:19].std(0), 0.025, rtol=0.1)
    for i in range(3):
        tips, obj = _c_positions(env.mj_model, qpos[i], ("tips_arm", "object"))
        np.testing.assert_allclose(obs[i, 14:20], np.concatenate([tips, obj]), atol=1e-6)
        np.testing.assert_allclose(obs[i, :14], np.concatenate([qpos[i, :7], qvel[i, :7]]))
    # Reward from C's positions: goal (0.45, -0.05, -0.323), PETS' weights.
    action = np.linspace(-2, 2, 7).astype(np.float32)
    tips, obj = obs[0, 14:17], obs[0, 17:20]
    expected = -(
        0.5 * np.abs(tips - obj).sum()
        + 1.25 * np.abs(obj - [0.45, -0.05, -0.323]).sum()
        + 0.1 * np.sum(action**2)
    )
    assert float(env.reward_fn(obs[0], action, obs[0])) == pytest.approx(expected, abs=1e-5)


def test_cartpole_tip_and_reward_match_the_geometry():
    env = loaded("cartpole")
    rng = np.random.default_rng(3)
    for x, theta in rng.uniform([-2, -np.pi], [2, np.pi], (5, 2)):
        data = mujoco.MjData(env.mj_model)
        data.qpos[:] = x, theta
        mujoco.mj_kinematics(env.mj_model, data)
        # The far end of the pole: its capsule's centre mirrored about the hinge.
        end = 2 * data.geom_xpos[env.mj_model.geom("pole").id] - data.xpos[2]
        tip = np.asarray(env.tip_position(np.array([x, theta, 0, 0], np.float32)))
        # PETS' formula ignores the pole's 0.001 m tilt in the published MJCF.
        np.testing.assert_allclose(tip, end[[0, 2]], atol=2e-3)
    hanging, upright = np.zeros(4, np.float32), np.array([0, np.pi, 0, 0], np.float32)
    zero, push = np.zeros(1, np.float32), np.full(1, 3.0, np.float32)
    assert float(env.reward_fn(hanging, zero, upright)) == pytest.approx(1.0)
    assert float(env.reward_fn(hanging, push, upright)) == pytest.approx(1.0 - 0.09)
    assert float(env.reward_fn(upright, zero, hanging)) == pytest.approx(np.exp(-4.0))


def test_mjx_integrates_with_rk4():
    """MJX honours the model's RK4: it lands where C's RK4 does, and not where Euler does.

    From a fast-swinging state one RK4 and one Euler step are ~1e-2 apart (measured), far
    above the MJX-vs-C difference (~1e-6), so a silently ignored integrator would fail.
    """
    rk4, reset, step = compiled("cartpole")
    euler = envs.load("cartpole", integrator="euler")
    assert rk4.mjx_model.opt.integrator == RK4
    assert euler.mjx_model.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    state = reset(jax.random.key(0))
    start = state.data.replace(qpos=jnp.array([0.3, 2.0]), qvel=jnp.array([1.0, 6.0]))
    state = state.replace(data=start)
    action = jnp.array([2.0])
    next_rk4 = step(state, action).data
    next_euler = jax.jit(euler.step)(state, action).data
    data = mujoco.MjData(rk4.mj_model)
    data.qpos[:], data.qvel[:], data.ctrl[:] = [0.3, 2.0], [1.0, 6.0], [2.0]
    for _ in range(rk4.config.frame_skip):
        mujoco.mj_step(rk4.mj_model, data)
    np.testing.assert_allclose(next_rk4.qvel, data.qvel, atol=1e-4)
    np.testing.assert_allclose(next_rk4.qpos, data.qpos, atol=1e-5)
    assert np.abs(np.asarray(next_euler.qvel) - data.qvel).max() > 1e-3
