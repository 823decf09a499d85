"""Tests of the MJX environments (jaxmbrl.envs): real MJX and MuJoCo C, no mocks.

MJX compiles take 5-60 s per program on a 2-core CPU, so each env's jit(reset) and
jit(step) are compiled once per process (tests/env_programs.py, shared with
test_envs_study.py), and one recorded rollout per env (fixture ``rollout``) feeds several
tests. Batched programs are compiled only for cartpole and half_cheetah.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from compiles import count_compiles
from env_programs import compiled as _compiled

from jaxmbrl import envs

T_PARITY = 110  # environment steps compared with MuJoCo C
# Every env's MJCF compiles in MuJoCo C too, so every env has a C reference. Open loop
# leaves out the chaotic ones: the contact-rich cheetah and the light cartpole_gear10,
# whose pole spins under random actions (measured 3.5e-2 apart after 110 steps).
OPEN_LOOP_ENVS = tuple(n for n in envs.ALL_ENVS if n not in ("half_cheetah", "cartpole_gear10"))
# Batched programs (jit(scan(BatchedEnv.step)), chunks of MAX_CHUNK) for two envs only:
# cartpole at 1024 members (4 chunks), half_cheetah at 8 (one vmap). CHECKED: the members
# compared with unbatched runs (cartpole: from every chunk).
T_BATCH, MAX_CHUNK = 20, 256
BATCHES = {"cartpole": 1024, "half_cheetah": 8}
CHECKED = {"cartpole": (0, 1, 2, 5, 255, 256, 700, 1023), "half_cheetah": tuple(range(8))}


@pytest.fixture(scope="module", params=envs.ALL_ENVS)
def compiled(request):
    return _compiled(request.param)


@functools.cache
def _rollout(name):
    """T_PARITY steps of uniform random actions from reset, stepped one jit call at a time."""
    env, reset, step = _compiled(name)
    rng = np.random.default_rng(0)
    actions = rng.uniform(env.action_low, env.action_high, (T_PARITY, env.action_size))
    actions = actions.astype(np.float32)
    states = [reset(jax.random.key(3))]
    for a in actions:
        states.append(step(states[-1], a))
    return env, actions, states


@pytest.fixture(scope="module")
def rollout(compiled):
    return _rollout(compiled[0].name)


def _stack(states, field):
    return np.stack([np.asarray(field(s)) for s in states])


def test_reset_step_shapes_dtypes_finite(rollout):
    env, _, states = rollout
    assert env.action_low.shape == env.action_high.shape == (env.action_size,)
    assert env.action_low.dtype == np.float32 and np.all(env.action_low < env.action_high)
    for s in states[:2] + states[-1:]:
        assert s.obs.shape == (env.observation_size,) and s.obs.dtype == jnp.float32
        assert s.reward.shape == () and s.reward.dtype == jnp.float32
        assert s.done.shape == () and s.done.dtype == jnp.float32
        assert s.metrics["diverged"].dtype == jnp.float32
        assert s.info["steps"].dtype == jnp.int32
        assert np.all(np.isfinite(s.obs)) and np.isfinite(s.reward)
    assert int(states[-1].info["steps"]) == T_PARITY
    assert _stack(states, lambda s: s.done).max() == 0.0  # T_PARITY < every episode_length
    assert _stack(states, lambda s: s.metrics["diverged"]).max() == 0.0


def test_reward_termination_and_targets_match_pure_functions(rollout):
    env, actions, states = rollout
    obs = _stack(states, lambda s: s.obs)
    # Leading dims [1, T] exercise arbitrary batch dimensions.
    o, a, o2 = obs[None, :-1], actions[None], obs[None, 1:]
    reward = np.asarray(env.reward_fn(o, a, o2))[0]
    np.testing.assert_allclose(_stack(states[1:], lambda s: s.reward), reward, rtol=1e-6, atol=1e-6)
    term = np.asarray(env.termination_fn(o, a, o2))
    assert term.shape == (1, T_PARITY) and term.dtype == bool and not term.any()
    features = env.obs_preprocess(o)
    assert features.shape == (1, T_PARITY, env.obs_feature_size)
    target = env.make_target(o, o2)
    assert target.shape == (1, T_PARITY, env.target_size)
    np.testing.assert_allclose(env.obs_postprocess(o, target), o2, rtol=1e-6, atol=1e-5)


def _c_step(env, model, qpos, qvel, warmstart, action):
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:], data.qacc_warmstart[:] = qpos, qvel, warmstart
    data.ctrl[:] = action
    for _ in range(env.config.frame_skip):
        mujoco.mj_step(model, data)
    return data.qpos.copy(), data.qvel.copy(), data.qacc_warmstart.copy()


@pytest.mark.parametrize("name", envs.ALL_ENVS)
def test_parity_with_mujoco_c_one_step(name):
    """MJX steps from 110 states of a MuJoCo C trajectory land where C does.

    One-step (teacher-forced) comparison: open-loop float32-vs-float64 trajectories of the
    contact-rich cheetah separate chaotically after ~30 steps (measured 1e-2 at step 30)
    although every single step agrees. Tolerances (qpos 1e-4, qvel 2e-3 + 1e-4 |qvel|) are
    ~20x the worst one-step error measured (half_cheetah: qpos 2.4e-6, qvel 8.6e-5; the
    RK4 models: cartpole 4e-6 / 1e-5, reacher 2e-6 / 4e-6 relative).
    """
    _, _, step = _compiled(name)
    env, actions, states = _rollout(name)
    state0 = states[0]
    qpos, qvel = np.asarray(state0.data.qpos, np.float64), np.asarray(state0.data.qvel, np.float64)
    warm = np.zeros(env.mj_model.nv)
    with count_compiles() as compiled:
        for action in actions:
            start = state0.data.replace(
                qpos=jnp.asarray(qpos, jnp.float32),
                qvel=jnp.asarray(qvel, jnp.float32),
                qacc_warmstart=jnp.asarray(warm, jnp.float32),
            )
            mjx_next = step(state0.replace(data=start), action).data
            qpos, qvel, warm = _c_step(env, env.mj_model, qpos, qvel, warm, action)
            np.testing.assert_allclose(mjx_next.qpos, qpos, rtol=0, atol=1e-4)
            np.testing.assert_allclose(mjx_next.qvel, qvel, rtol=1e-4, atol=2e-3)
    assert compiled.count(step) <= 1  # injected C states did not recompile


@pytest.mark.parametrize("name", OPEN_LOOP_ENVS)
def test_parity_with_mujoco_c_open_loop(name):
    """Open loop over 110 steps where random-action trajectories are not chaotic.

    Tolerance qpos 1e-2 (worst measured 4.2e-4: PETS' pusher at step 109, float32 vs
    float64); qvel 5e-2: a joint-limit impact turns that qpos drift into a velocity jump
    that differs by 1.04e-2 (PETS' pusher, wrist flex reaching its limit at step 109 with
    the test's 512-bit vectors; 1.3e-4 without). Elsewhere: pusher_gym 8e-4, reacher
    7.8e-5 / 2.7e-4, cartpole 8.4e-5 / 2.0e-4 (qpos / qvel). The cheetah's open loop is
    chaotic (see the one-step test).
    """
    env, actions, states = _rollout(name)
    qpos, qvel = np.asarray(states[0].data.qpos, np.float64), np.asarray(states[0].data.qvel)
    warm = np.zeros(env.mj_model.nv)
    for action, state in zip(actions, states[1:], strict=True):
        qpos, qvel, warm = _c_step(env, env.mj_model, qpos, qvel, warm, action)
        np.testing.assert_allclose(state.data.qpos, qpos, rtol=0, atol=1e-2)
        np.testing.assert_allclose(state.data.qvel, qvel, rtol=0, atol=5e-2)


@pytest.mark.parametrize("name", ["cartpole", "cartpole_gear10"])
def test_cartpole_swing_up_is_feasible(name):
    """Energy pumping within the action bounds brings the tip upright within 100 steps."""
    env = envs.load(name)
    model, data = env.mj_model, mujoco.MjData(env.mj_model)
    data.qpos[:] = [0.0, 0.05]
    pole = model.body("pole")
    mgl = model.opt.gravity[2] * -pole.mass[0] * env.config.pole_length / 2
    inertia = pole.inertia[1] + pole.mass[0] * (env.config.pole_length / 2) ** 2
    heights = []
    for _ in range(env.episode_length):
        theta, theta_dot = data.qpos[1], data.qvel[1]
        energy = 0.5 * inertia * theta_dot**2 - mgl * np.cos(theta)
        data.ctrl[:] = env.action_high * np.sign(theta_dot * np.cos(theta)) if energy < mgl else 0
        for _ in range(env.config.frame_skip):
            mujoco.mj_step(model, data)
        heights.append(-env.config.pole_length * np.cos(data.qpos[1]))
    first_up = np.argmax(np.array(heights) > 0.95 * env.config.pole_length)
    assert heights[first_up] > 0.95 * env.config.pole_length and first_up < 100


def _batched_rollout(batched_env):
    """jit(scan(BatchedEnv.step)): states [B], actions [B, T, A] -> final, all states [B, T]."""

    def run(states, actions):
        def body(s, a):
            s = batched_env.step(s, a)
            return s, s

        final, traj = jax.lax.scan(body, states, jnp.swapaxes(actions, 0, 1))
        return final, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traj)

    return jax.jit(run, compiler_options=batched_env.compiler_options)


@pytest.fixture(scope="module", params=list(BATCHES))
def batched(request):
    env, reset, step = _compiled(request.param)
    batched_env = envs.BatchedEnv(env, max_chunk=MAX_CHUNK)
    run = _batched_rollout(batched_env)
    keys = jax.random.split(jax.random.key(7), BATCHES[env.name])
    states = jax.jit(batched_env.reset)(keys)
    rng = np.random.default_rng(1)
    actions = rng.uniform(env.action_low, env.action_high, (len(keys), T_BATCH, env.action_size))
    actions = actions.astype(np.float32)
    final, traj = run(states, actions)
    traj = jax.tree.map(np.asarray, traj)
    return env, reset, step, run, keys, states, actions, traj


def test_vmap_equals_separate_runs_without_recompiling(batched):
    """Each batched step equals the unbatched step from the same state, to float rounding.

    Batched and unbatched XLA kernels round differently; through the cheetah's contact
    solve that gives one-step differences up to ~1e-4 (measured 9.6e-5, median 1.8e-6),
    hence atol 1e-3, and open loop it grows chaotically (0.2 by step 14), so the open-loop
    comparison is made for cartpole only (measured: bitwise equal).

    Also covers what test_batch_of_1024_completes_in_chunks checked on its own program
    before (merged to compile one batched cartpole program instead of two): cartpole runs
    1024 members through ``BatchedEnv`` in chunks of 256 (the guard against MJX's batched
    LAPACK hang) to the end with finite observations and no divergence, and members of
    every chunk match unbatched runs; ``BatchedEnv.reset`` equals unbatched resets.
    """
    env, reset, step, run, keys, states, actions, traj = batched
    assert traj.obs.shape == (len(keys), T_BATCH, env.observation_size)
    assert traj.reward.shape == (len(keys), T_BATCH)
    assert np.all(np.isfinite(traj.obs)) and not np.any(traj.metrics["diverged"])
    for i in CHECKED[env.name]:
        state = reset(keys[i])
        np.testing.assert_array_equal(state.obs, states.obs[i])
        members = [state] + [
            jax.tree.map(lambda x, i=i, t=t: x[i, t], traj) for t in range(T_BATCH)
        ]
        open_loop = state
        for t in range(T_BATCH):
            one_step = step(members[t], actions[i, t])
            np.testing.assert_allclose(one_step.obs, traj.obs[i, t], rtol=1e-5, atol=1e-3)
            np.testing.assert_allclose(one_step.reward, traj.reward[i, t], rtol=1e-5, atol=1e-3)
            if env.name == "cartpole":
                open_loop = step(open_loop, actions[i, t])
                np.testing.assert_allclose(open_loop.obs, traj.obs[i, t], rtol=1e-6, atol=1e-6)
    with count_compiles() as compiled:
        run(states, actions[:, ::-1])  # new values, same shapes
    assert compiled.count(run) == 0


def test_divergence_and_time_limit_freeze_only_their_member(batched):
    env, _, _, run, keys, states, actions, clean = batched
    nan_member, huge_member, late_member = 2, 5, 1
    qvel = states.data.qvel.at[nan_member].set(jnp.nan).at[huge_member].set(1e6)
    steps = states.info["steps"].at[late_member].set(env.episode_length - 3)
    injected = states.replace(
        data=states.data.replace(qvel=qvel), info={**states.info, "steps": steps}
    )
    final, out = jax.tree.map(np.asarray, run(injected, actions))
    obs, reward, done, diverged = out.obs, out.reward, out.done, out.metrics["diverged"]
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
    for i in (nan_member, huge_member):
        assert final.metrics["diverged"][i] == 1 and np.all(diverged[i] == 1)
        assert np.all(done[i] == 1) and np.all(reward[i] == 0)
        np.testing.assert_array_equal(obs[i], np.broadcast_to(states.obs[i], obs[i].shape))
        assert np.all(np.isfinite(final.data.qpos[i]))
    # Time limit: done after 3 steps, then frozen (no auto-reset), not diverged.
    np.testing.assert_array_equal(done[late_member], (np.arange(T_BATCH) >= 2).astype(np.float32))
    assert np.all(diverged[late_member] == 0) and np.all(reward[late_member, 3:] == 0)
    np.testing.assert_array_equal(
        obs[late_member, 3:], np.broadcast_to(obs[late_member, 2], obs[late_member, 3:].shape)
    )
    assert final.info["steps"][late_member] == env.episode_length
    # The other members are untouched by their neighbours' blow-ups.
    blown = (nan_member, huge_member, late_member)
    others = np.array([i for i in range(len(keys)) if i not in blown])
    np.testing.assert_allclose(obs[others], clean.obs[others], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(reward[others], clean.reward[others], rtol=1e-6, atol=1e-6)
    assert not np.any(done[others]) and not np.any(diverged[others])


def test_chunked_vmap_pads_and_matches_vmap():
    fn = lambda key, x: {"noise": jax.random.normal(key, (3,)) * x[0], "sum": jnp.sum(x)}
    keys = jax.random.split(jax.random.key(0), 10)
    xs = jnp.arange(20.0).reshape(10, 2)
    expected = jax.vmap(fn)(keys, xs)
    got = jax.jit(envs.chunked_vmap(fn, max_chunk=4))(keys, xs)  # 3 chunks of 4, 2 padded
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-6), got, expected)
    with pytest.raises(ValueError, match="leading size"):
        envs.chunked_vmap(fn, max_chunk=4)(keys, xs[:5])
    with pytest.raises(ValueError, match="max_chunk"):
        envs.chunked_vmap(fn, max_chunk=0)


def test_load_overrides_and_bad_input():
    env = envs.load("cartpole", iterations=7, episode_length=50, solver="cg")
    assert env.mj_model.opt.iterations == 7 and env.episode_length == 50
    assert env.mj_model.opt.solver == mujoco.mjtSolver.mjSOL_CG
    with pytest.raises(ValueError, match="unknown env 'ant'.*half_cheetah"):
        envs.load("ant")
    with pytest.raises(ValueError, match="unknown cartpole config field.*pole_length"):
        envs.load("cartpole", pole_lenght=1.0)
    with pytest.raises(ValueError, match="solver='pgs'"):
        envs.load("cartpole", solver="pgs")
    with pytest.raises(ValueError, match="iterations=0"):
        envs.load("cartpole", iterations=0)
    env, reset, step = _compiled("cartpole")
    state = reset(jax.random.key(0))
    with pytest.raises(ValueError, match=r"action shape \(2,\) != \(1,\)"):
        step(state, jnp.zeros(2))
    with pytest.raises(ValueError, match="action shape"):
        step(state, jnp.zeros((4, 1)))  # a batch needs vmap
