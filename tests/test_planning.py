"""Tests of the padded CEM planner and trajectory-sampling costs (jaxmbrl.planning)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compiles import count_compiles
from planning_reference import make_trajectory_cost, make_trajectory_rollout

from jaxmbrl.planning import (
    NONFINITE_COST,
    CEMConfig,
    CEMHParams,
    check_cem_hparams,
    default_cem_hparams,
    make_cem,
    make_stepped_trajectory_cost,
    planning_flops,
)

LOW, HIGH = (-1.0, -1.0), (1.0, 1.0)
# Masked planner: padded maxima; unmasked planners are built with the hparams as maxima.
MASKED = CEMConfig(LOW, HIGH, max_horizon=8, max_population=40, max_iterations=6)
H, N, ITERS = 5, 24, 4
UNMASKED = CEMConfig(LOW, HIGH, max_horizon=H, max_population=N, max_iterations=ITERS)
HP = default_cem_hparams(horizon=H, population=N, iterations=ITERS, elite_ratio=0.2, alpha=0.15)
OBS_DIM, ACT_DIM, MODELS, PARTICLES = 4, 2, 2, 4


def hp(**kw) -> CEMHParams:
    return HP._replace(**{k: jnp.asarray(v, getattr(HP, k).dtype) for k, v in kw.items()})


def stack(*hps: CEMHParams) -> CEMHParams:
    return jax.tree.map(lambda *x: jnp.stack(x), *hps)


def quad_cost(target, noise_scale):
    """Prefix-stable toy cost: sequential sum over steps < horizon, per-candidate noise keys."""

    def cost(key, actions, horizon, first):
        num_cands, max_h, _ = actions.shape
        per_step = jnp.sum((actions - target[:max_h]) ** 2, axis=-1).T  # [H, P]
        step = lambda acc, x: (acc + jnp.where(x[0] < horizon, x[1], 0.0), None)
        total, _ = jax.lax.scan(step, jnp.zeros(num_cands), (jnp.arange(max_h), per_step))
        keys = jax.vmap(jax.random.fold_in, (None, 0))(key, first + jnp.arange(num_cands))
        return total + noise_scale * jax.vmap(jax.random.normal)(keys)

    return cost


TRACES = {"masked": 0}


def _planner(config, count=False):
    cem = make_cem(config)

    def run(key, target, noise_scale, hparams):
        if count:
            TRACES["masked"] += 1
        return cem.optimize(key, quad_cost(target, noise_scale), cem.initial_mean(), hparams)

    return cem, jax.jit(run)


@pytest.fixture(scope="module")
def masked():
    return _planner(MASKED, count=True)


@pytest.fixture(scope="module")
def target():
    return jax.random.uniform(jax.random.key(1), (MASKED.max_horizon, 2), minval=-0.6, maxval=0.6)


def test_cem_finds_quadratic_optimum_within_bounds(masked, target):
    _, run = masked
    # A 4-dim problem (horizon 2 of 8): 40 candidates x 6 iterations converge on it.
    short = hp(horizon=2, population=40, iterations=6, elite_ratio=0.2, alpha=0.1)
    for seed in range(3):
        plan, info = run(jax.random.key(seed), target, 0.0, short)
        np.testing.assert_allclose(plan[:2], target[:2], atol=0.05)
        assert float(info["best_cost"]) < 0.01
    # Optimum outside the bounds: the plan stays inside and heads for the nearest bound (slowly:
    # the variance cap shrinks the steps near a bound, as in PETS).
    plan, _ = run(jax.random.key(0), jnp.full_like(target, 3.0), 0.0, short)
    assert np.all(np.asarray(plan) <= 1.0) and np.all(np.asarray(plan) >= -1.0)
    assert np.all(np.asarray(plan[:2]) > 0.7)


def test_samples_truncated_and_in_bounds(masked):
    cem, _ = masked
    mean = jnp.tile(jnp.array([[0.95, -0.3]]), (MASKED.max_horizon, 1))
    var = jnp.full_like(mean, 4.0)
    samples = np.asarray(jax.jit(cem.sample)(jax.random.key(3), mean, var))
    assert samples.shape == (40, 8, 2)
    assert samples.min() >= -1.0 and samples.max() <= 1.0
    # Variance capped so that 2 std stay in bounds: |s - mean| <= 2 * min(dist to bound) / 2.
    half_gap = np.minimum(np.asarray(mean) + 1.0, 1.0 - np.asarray(mean))
    assert np.all(np.abs(samples - np.asarray(mean)) <= half_gap + 1e-6)


def test_elites_mean_and_momentum(masked, target):
    """One iteration: plan = mean of the round(0.3*10) = 3 cheapest of the first 10 samples."""
    cem, run = masked
    hparams = hp(horizon=8, population=10, iterations=1, elite_ratio=0.3, alpha=0.25)
    key = jax.random.key(4)
    plan, info = run(key, target, 0.0, hparams)
    mean0 = cem.initial_mean()
    var0 = jnp.full_like(mean0, 4.0 / 16)
    sample_key, _ = jax.random.split(jax.random.fold_in(key, 0))
    cands = np.asarray(cem.sample(sample_key, mean0, var0))[:10]
    costs = ((cands - np.asarray(target)) ** 2).sum(axis=(1, 2))
    elites = cands[np.argsort(costs)[:3]]
    np.testing.assert_allclose(plan, elites.mean(0), atol=1e-6)
    np.testing.assert_allclose(info["smoothed_mean"], 0.75 * elites.mean(0), atol=1e-6)
    np.testing.assert_allclose(info["var"], 0.25 * var0 + 0.75 * elites.var(0), atol=1e-6)
    np.testing.assert_allclose(info["best_cost"], costs.min(), rtol=1e-5)


def test_masked_equals_unmasked(masked, target):
    _, run_masked = masked
    _, run_unmasked = _planner(UNMASKED)
    for seed in range(3):
        key = jax.random.key(seed)
        plan_m, info_m = run_masked(key, target, 0.3, HP)
        plan_u, info_u = run_unmasked(key, target, 0.3, HP)
        np.testing.assert_array_equal(plan_m[:H], plan_u)
        assert float(info_m["best_cost"]) == float(info_u["best_cost"])


def test_no_recompilation_when_hparams_change(masked, target):
    _, run = masked
    before = TRACES["masked"]
    with count_compiles() as compiled:
        run(jax.random.key(0), target, 0.0, HP)
        traced_once = TRACES["masked"]
        for h, n, it, ratio, alpha in [
            (3, 7, 2, 0.5, 0.0),
            (8, 40, 6, 0.04, 0.2),
            (1, 1, 1, 1.0, 1.0),
        ]:
            plan, _ = run(
                jax.random.key(0),
                target,
                0.0,
                hp(horizon=h, population=n, iterations=it, elite_ratio=ratio, alpha=alpha),
            )
            assert np.all(np.isfinite(plan))
    assert TRACES["masked"] == traced_once and traced_once <= before + 1
    assert compiled.count(run) <= 1


CHUNKED = CEMConfig(
    LOW, HIGH, max_horizon=8, max_population=40, max_iterations=6, candidate_chunk=7
)


def test_chunked_equals_unchunked(masked, target):
    """Chunks of 7 (the last one past max_population 40) give the unchunked plan bit for bit:
    the toy cost is elementwise per candidate and keyed by the global candidate index."""
    _, run = masked
    _, run_chunked = _planner(CHUNKED)
    for hparams in (HP, hp(population=40, horizon=8), hp(population=7), hp(population=1)):
        for seed in range(2):
            plan, info = run(jax.random.key(seed), target, 0.3, hparams)
            plan_c, info_c = run_chunked(jax.random.key(seed), target, 0.3, hparams)
            np.testing.assert_array_equal(plan_c, plan)
            np.testing.assert_array_equal(info_c["var"], info["var"])
            assert float(info_c["best_cost"]) == float(info["best_cost"])


def test_only_chunks_with_real_candidates_are_evaluated():
    cem = make_cem(CHUNKED)
    firsts = []

    def cost(key, actions, horizon, first):
        jax.debug.callback(lambda f: firsts.append(int(f)), first)
        return quad_cost(jnp.zeros((8, 2)), 0.0)(key, actions, horizon, first)

    run = jax.jit(lambda key, hparams: cem.optimize(key, cost, cem.initial_mean(), hparams))
    for population, iterations in ((15, 2), (14, 3), (40, 1)):
        firsts.clear()
        jax.block_until_ready(
            run(jax.random.key(0), hp(population=population, iterations=iterations))
        )
        chunks = list(range(0, population, 7))  # ceil(population / 7) chunks per iteration
        assert sorted(firsts) == sorted(chunks * iterations)
    # Work counts what runs: iterations x whole chunks x horizon.
    work = cem.padded_work(stack(hp(population=15, iterations=2, horizon=3), hp(population=40)))
    np.testing.assert_array_equal(work, [2 * 21 * 3, ITERS * 42 * H])


def test_nonfinite_costs_last_and_padding_never_elite(masked, target):
    cem, run = masked

    @jax.jit
    def adversarial(key, goal, threshold, padded_value, hparams):
        base = quad_cost(goal, 0.0)

        def cost(key, actions, horizon, first):
            c = base(key, actions, horizon, first)
            c = jnp.where(actions[:, 0, 0] > threshold, jnp.nan, c)
            c = jnp.where(actions[:, 1, 0] < -threshold, -jnp.inf, c)
            index = first + jnp.arange(c.shape[0])
            return jnp.where(index >= hparams.population, padded_value, c)

        return cem.optimize(key, cost, cem.initial_mean(), hparams)

    key = jax.random.key(7)
    reference, _ = run(key, target, 0.0, HP)
    for padded_value in (-1e9, -jnp.inf, jnp.nan, 0.0):
        plan, _ = adversarial(key, target, jnp.inf, padded_value, HP)
        np.testing.assert_array_equal(plan, reference)
    # Optimum at +-0.8 where the cost is NaN / -inf: the plan stays in the finite region.
    goal = jnp.tile(jnp.array([[0.8, 0.0]]), (8, 1)).at[1, 0].set(-0.8)
    plan, info = adversarial(key, goal, 0.3, -1e9, hp(horizon=2, population=40, iterations=6))
    assert np.all(np.isfinite(plan)) and float(info["best_cost"]) < NONFINITE_COST
    assert 0.2 < float(plan[0, 0]) <= 0.3 + 1e-6 and -0.2 > float(plan[1, 0]) >= -0.3 - 1e-6


def test_vmap_over_agents_equals_separate_calls(masked, target):
    _, run = masked
    agents = [
        HP,
        hp(horizon=8, population=40, iterations=6, elite_ratio=0.1, alpha=0.1),
        hp(horizon=2, population=9, iterations=2, elite_ratio=0.45, alpha=0.05),
    ]
    keys = jax.random.split(jax.random.key(11), 3)
    plans, infos = jax.jit(jax.vmap(run, in_axes=(0, None, None, 0)))(
        keys, target, 0.2, stack(*agents)
    )
    for i, agent in enumerate(agents):
        plan, info = run(keys[i], target, 0.2, agent)
        np.testing.assert_allclose(plans[i], plan, atol=1e-6)
        np.testing.assert_allclose(infos["best_cost"][i], info["best_cost"], atol=1e-6)


# ---------------------------------------------------------------- trajectory sampling
def model_fn(state, obs, act):
    """Linear ensemble: mean = obs C + act B + offset[k]; NaN where state's thresholds say."""
    mean = obs @ state["C"] + act @ state["B"] + state["offset"][:, None, :]
    member = jnp.arange(obs.shape[0])[:, None, None]
    mean = jnp.where((act[..., :1] > state["nan_act"]) & (member == 1), jnp.nan, mean)
    mean = jnp.where(obs[..., 2:3] >= state["nan_obs"], jnp.nan, mean)
    return mean, jnp.broadcast_to(jnp.exp(0.5 * state["logvar"]), mean.shape)


def obs_postprocess(obs, target):
    return obs + target


def reward_fn(obs, act, next_obs):
    del obs
    return 1.0 + next_obs[..., 0] - 0.5 * next_obs[..., 1] ** 2 - 0.1 * jnp.sum(act**2, -1)


def termination_fn(obs, act, next_obs):
    del obs, act
    return next_obs[..., 2] >= 3.0


def model_state(seed=0, scale=0.3, offset=None, logvar=-jnp.inf, nan_act=jnp.inf, nan_obs=jnp.inf):
    kc, kb = jax.random.split(jax.random.key(seed))
    return {
        "C": scale * jax.random.normal(kc, (OBS_DIM, OBS_DIM)),
        "B": scale * jax.random.normal(kb, (ACT_DIM, OBS_DIM)),
        "offset": jnp.zeros((MODELS, OBS_DIM)) if offset is None else jnp.asarray(offset),
        "logvar": jnp.asarray(logvar, jnp.float32),
        "nan_act": jnp.asarray(nan_act, jnp.float32),
        "nan_obs": jnp.asarray(nan_obs, jnp.float32),
    }


def _rollout(propagation, max_horizon=8, particles=PARTICLES, models=MODELS, cost=False):
    make = make_trajectory_cost if cost else make_trajectory_rollout
    return jax.jit(
        make(
            model_fn,
            obs_postprocess,
            reward_fn,
            termination_fn,
            num_particles=particles,
            num_models=models,
            max_horizon=max_horizon,
            propagation=propagation,
        )
    )


@pytest.fixture(scope="module")
def rollouts():
    return {p: _rollout(p, particles=6, models=3) for p in ("ts_inf", "ts_1", "expectation")}


def numpy_returns(state, obs, actions, horizon):
    """Hand-written deterministic rollout of the linear model (one model, zero variance)."""
    C, B, off = (np.asarray(state[k], np.float64) for k in ("C", "B", "offset"))
    out = []
    for cand in np.asarray(actions, np.float64):
        o, total, alive = np.asarray(obs, np.float64), 0.0, True
        for t in range(horizon):
            a = cand[t]
            nxt = o + o @ C + a @ B + off[0]
            if alive:
                total += 1.0 + nxt[0] - 0.5 * nxt[1] ** 2 - 0.1 * np.sum(a**2)
            alive = alive and nxt[2] < 3.0
            o = nxt
        out.append(total)
    return np.array(out)


def test_deterministic_costs_equal_hand_rollout(rollouts):
    obs = jnp.array([0.1, -0.2, 0.3, 0.0])
    actions = jax.random.uniform(jax.random.key(5), (5, 8, ACT_DIM), minval=-1, maxval=1)
    state = model_state(offset=jnp.zeros((3, OBS_DIM)))
    costs_fn = _rollout("ts_inf", cost=True)
    for horizon in (8, 3):
        expected = numpy_returns(state, obs, actions, horizon)
        # Zero variance: every propagation and every particle gives the hand-computed return.
        for rollout in rollouts.values():
            returns = rollout(jax.random.key(0), state, obs, actions, horizon)
            np.testing.assert_allclose(returns, np.tile(expected[:, None], 6), rtol=2e-5)
    state = model_state()
    np.testing.assert_allclose(
        costs_fn(jax.random.key(0), state, obs, actions, 8),
        -numpy_returns(state, obs, actions, 8),
        rtol=2e-5,
    )


def test_ts_inf_keeps_model_j_mod_m_and_ts_1_reassigns(rollouts):
    # Models differ by a constant x-offset (m + 1): particle j's return identifies its model.
    offset = jnp.zeros((3, OBS_DIM)).at[:, 0].set(jnp.arange(1.0, 4.0))
    state = model_state(scale=0.0, offset=offset)
    actions = jnp.zeros((4, 8, ACT_DIM))
    horizon = 5
    model_of_particle = np.arange(6) % 3
    expected = horizon + (model_of_particle + 1) * horizon * (horizon + 1) / 2
    for name in ("ts_inf", "expectation"):
        returns = rollouts[name](jax.random.key(0), state, jnp.zeros(OBS_DIM), actions, horizon)
        np.testing.assert_allclose(returns, np.tile(expected, (4, 1)), rtol=1e-6)
    returns = np.asarray(
        rollouts["ts_1"](jax.random.key(0), state, jnp.zeros(OBS_DIM), actions, horizon)
    )
    assert not np.allclose(returns, np.tile(expected, (4, 1)))  # models change between steps
    # ...but each step every model still takes particles/models particles of each candidate.
    np.testing.assert_allclose(returns.mean(1), expected.mean(), rtol=1e-6)
    assert len({tuple(r) for r in returns}) > 1  # candidates draw their own assignments
    # A particle carries its own state between models: with a quadratic reward (offset in
    # obs[1]) every TS-1 return over 2 steps is f(a1) + f(a1 + a2), a1, a2 in {1, 2, 3}.
    state = model_state(scale=0.0, offset=jnp.zeros((3, OBS_DIM)).at[:, 1].set(jnp.arange(1, 4)))
    returns = rollouts["ts_1"](jax.random.key(0), state, jnp.zeros(OBS_DIM), actions, 2)
    f = lambda x: 1.0 - 0.5 * x**2
    reachable = np.array([f(a) + f(a + b) for a in (1, 2, 3) for b in (1, 2, 3)])
    assert np.all(np.min(np.abs(np.asarray(returns)[..., None] - reachable), axis=-1) < 1e-5)


def test_termination_stops_reward_and_hides_later_nans(rollouts):
    # Member m moves obs[2] by m + 1 per step; terminates once obs[2] >= 3; NaN from then on.
    offset = jnp.zeros((3, OBS_DIM)).at[:, 2].set(jnp.arange(1.0, 4.0))
    state = model_state(scale=0.0, offset=offset, nan_obs=3.0)
    actions = jnp.zeros((2, 8, ACT_DIM))
    after_end = model_fn(state, jnp.full((3, 1, OBS_DIM), 3.0), jnp.zeros((3, 1, ACT_DIM)))[0]
    assert np.all(np.isnan(after_end))  # the model really returns NaN after termination
    for horizon, expected in ((8, [3.0, 2.0, 1.0]), (2, [2.0, 2.0, 1.0])):
        returns = rollouts["ts_inf"](jax.random.key(0), state, jnp.zeros(OBS_DIM), actions, horizon)
        np.testing.assert_array_equal(returns, np.tile(expected, (2, 2)))


def test_nan_model_output_does_not_leak(rollouts):
    cost_fn = _rollout("ts_1", cost=True)
    obs = jnp.array([0.1, -0.2, 0.3, 0.0])
    actions = jax.random.uniform(jax.random.key(6), (16, 8, ACT_DIM), minval=-1, maxval=1)
    clean = model_state(logvar=-2.0)
    costs = np.asarray(cost_fn(jax.random.key(1), clean, obs, actions, 4))
    nan_costs = np.asarray(cost_fn(jax.random.key(1), clean | {"nan_act": 0.5}, obs, actions, 4))
    bad = np.asarray(jnp.any(actions[:, :4, 0] > 0.5, axis=1))  # member 1 returns NaN there
    assert bad.any() and (~bad).any() and np.all(np.isfinite(costs))
    np.testing.assert_array_equal(nan_costs[bad], NONFINITE_COST)
    np.testing.assert_array_equal(nan_costs[~bad], costs[~bad])


def _cem_ts(config, propagation, stepped=False):
    cem = make_cem(config)
    cost = (make_stepped_trajectory_cost if stepped else make_trajectory_cost)(
        model_fn,
        obs_postprocess,
        reward_fn,
        termination_fn,
        num_particles=PARTICLES,
        num_models=MODELS,
        max_horizon=config.max_horizon,
        propagation=propagation,
    )

    def plan(key, state, obs, hparams):
        if stepped:
            return cem.optimize(key, cost(state, obs), cem.initial_mean(), hparams)
        cost_fn = lambda k, actions, horizon, first: cost(k, state, obs, actions, horizon, first)
        return cem.optimize(key, cost_fn, cem.initial_mean(), hparams)

    return jax.jit(plan)


@pytest.fixture(scope="module")
def cem_ts():
    return _cem_ts(MASKED, "ts_1")


def test_cem_trajectory_masked_equals_unmasked(cem_ts):
    unmasked = _cem_ts(UNMASKED, "ts_1")
    obs = jnp.array([0.1, -0.2, 0.3, 0.0])
    state = model_state(logvar=-2.0, nan_act=0.7)
    for seed in range(2):
        key = jax.random.key(seed)
        plan_m, info_m = cem_ts(key, state, obs, HP)
        plan_u, info_u = unmasked(key, state, obs, HP)
        np.testing.assert_allclose(plan_m[:H], plan_u, atol=1e-6)
        np.testing.assert_allclose(info_m["best_cost"], info_u["best_cost"], rtol=1e-6)
        assert np.all(np.isfinite(plan_m)) and np.all(np.asarray(plan_m[:H, 0]) <= 0.7 + 1e-6)


def test_cem_trajectory_chunked_equals_unchunked(cem_ts):
    """TS-1 noise and model permutations follow the global candidate index across chunks.

    Equal to float rounding only (as masked vs unmasked below): XLA's matmul and mean kernels
    for 7 rows may round differently from those for 40 (a 1-ulp cost difference seen)."""
    chunked = _cem_ts(CHUNKED, "ts_1")
    obs = jnp.array([0.1, -0.2, 0.3, 0.0])
    state = model_state(logvar=-2.0, nan_act=0.7)
    for hparams in (HP, hp(population=40, horizon=8)):
        key = jax.random.key(3)
        plan, info = cem_ts(key, state, obs, hparams)
        plan_c, info_c = chunked(key, state, obs, hparams)
        np.testing.assert_allclose(plan_c, plan, atol=1e-6)
        np.testing.assert_allclose(info_c["best_cost"], info["best_cost"], rtol=1e-6)


AGENTS = [
    HP,
    hp(horizon=8, population=40, iterations=6, elite_ratio=0.1, alpha=0.1),
    hp(horizon=2, population=9, iterations=2, elite_ratio=0.45, alpha=0.05),
]


def test_flat_loop_equals_nested_loops(cem_ts):
    """The stepped cost's one (iteration, chunk, step) loop plans as the nested loops do, alone
    and vmapped over agents of different horizons, chunk counts and iterations (float
    rounding as above: 7-row chunks against 40-row batches)."""
    flat = _cem_ts(CHUNKED, "ts_1", stepped=True)
    obs = jnp.array([0.1, -0.2, 0.3, 0.0])
    state = model_state(logvar=-2.0, nan_act=0.7)
    keys = jax.random.split(jax.random.key(13), 3)
    plans, infos = jax.jit(jax.vmap(flat, in_axes=(0, None, None, 0)))(
        keys, state, obs, stack(*AGENTS)
    )
    for i, agent in enumerate(AGENTS):
        plan, info = cem_ts(keys[i], state, obs, agent)
        plan_f, info_f = flat(keys[i], state, obs, agent)
        for p, inf in ((plan_f, info_f), (plans[i], jax.tree.map(lambda x, i=i: x[i], infos))):
            np.testing.assert_allclose(p, plan, atol=1e-6)
            np.testing.assert_allclose(inf["best_cost"], info["best_cost"], rtol=1e-6)
            np.testing.assert_allclose(inf["var"], info["var"], atol=1e-6)


@pytest.mark.parametrize("propagation", ["ts_inf", "ts_1"])
def test_noise_drawn_before_the_loop_equals_noise_drawn_per_tick(monkeypatch, propagation):
    """The flat loop draws a small noise table before its loop (`PREDRAW_BYTES`); the plan
    must be the one its ticks' own draws give (the same bits, so equal up to fusion)."""
    from jaxmbrl.planning import flat_loop

    obs = jnp.array([0.1, -0.2, 0.3, 0.0])
    state = model_state(logvar=-1.0)
    agent = AGENTS[1]  # 6 iterations of 40 candidates in chunks: every table index is read
    got = {}
    for limit in (flat_loop.PREDRAW_BYTES, 0):
        monkeypatch.setattr(flat_loop, "PREDRAW_BYTES", limit)
        flat = _cem_ts(CHUNKED, propagation, stepped=True)  # traced anew under this limit
        got[limit] = flat(jax.random.key(21), state, obs, agent)
    (plan_pre, info_pre), (plan_tick, info_tick) = got.values()
    np.testing.assert_allclose(plan_pre, plan_tick, atol=1e-6)
    np.testing.assert_allclose(info_pre["best_cost"], info_tick["best_cost"], rtol=1e-6)


def test_cem_trajectory_vmap_over_agents(cem_ts):
    agents = [
        HP,
        hp(horizon=8, population=40, iterations=6, elite_ratio=0.1, alpha=0.1),
        hp(horizon=2, population=9, iterations=2, elite_ratio=0.45, alpha=0.05),
    ]
    keys = jax.random.split(jax.random.key(12), 3)
    obs = jnp.array([0.1, -0.2, 0.3, 0.0])
    state = model_state(logvar=-2.0)
    plans, infos = jax.jit(jax.vmap(cem_ts, in_axes=(0, None, None, 0)))(
        keys, state, obs, stack(*agents)
    )
    for i, agent in enumerate(agents):
        plan, info = cem_ts(keys[i], state, obs, agent)
        np.testing.assert_allclose(plans[i], plan, atol=1e-6)
        np.testing.assert_allclose(infos["best_cost"][i], info["best_cost"], rtol=1e-6)


# ---------------------------------------------------------------- misc
def test_shift_and_initial_mean():
    cem = make_cem(MASKED)
    np.testing.assert_array_equal(cem.initial_mean(), np.zeros((8, 2)))
    plan = jnp.arange(16.0).reshape(8, 2) / 16
    shifted = cem.shift(plan, hp(horizon=5))
    np.testing.assert_array_equal(shifted[:4], plan[1:5])
    np.testing.assert_array_equal(shifted[4:], np.zeros((4, 2)))
    np.testing.assert_array_equal(cem.shift(plan)[:7], plan[1:])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_particles=5"):
        make_stepped_trajectory_cost(
            model_fn, obs_postprocess, reward_fn, None, num_particles=5, num_models=2, max_horizon=4
        )
    with pytest.raises(ValueError, match="propagation='ts_2'"):
        make_stepped_trajectory_cost(
            model_fn,
            obs_postprocess,
            reward_fn,
            None,
            num_particles=4,
            num_models=2,
            max_horizon=4,
            propagation="ts_2",
        )
    with pytest.raises(ValueError, match="max_population"):
        make_cem(CEMConfig(LOW, HIGH, max_population=0))
    with pytest.raises(ValueError, match="candidate_chunk=0"):
        make_cem(CEMConfig(LOW, HIGH, candidate_chunk=0))
    with pytest.raises(ValueError, match="low < high"):
        make_cem(CEMConfig(HIGH, LOW))
    with pytest.raises(ValueError, match="CEMHParams.horizon"):
        check_cem_hparams(MASKED, hp(horizon=9))
    with pytest.raises(ValueError, match="CEMHParams.elite_ratio"):
        check_cem_hparams(MASKED, hp(elite_ratio=0.0))
    check_cem_hparams(MASKED, stack(HP, hp(horizon=8)))


def test_planning_flops():
    paper = default_cem_hparams()
    assert planning_flops(2.0, paper, 20) == 5 * 500 * 20 * 30 * 2.0
    agents = stack(HP, hp(population=40))
    np.testing.assert_array_equal(planning_flops(1.0, agents, 4), [4 * 24 * 4 * 5, 4 * 40 * 4 * 5])
    np.testing.assert_array_equal(
        planning_flops(1.0, agents, 4, padded_population=40), [4 * 40 * 4 * 5] * 2
    )
