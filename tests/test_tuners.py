"""Tuners on synthetic populations (no PETS): selection rules, Hyperband arithmetic,
backtracking, invalid fitness, schedules, and no recompilation across steps.

Synthetic problem: a member's state is its training progress; each step adds
gain(u) = 1 - 4 |u - u*|^2, so fitness (progress) is a known function of the hyperparameters.
"""

import collections
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compiles import count_compiles

from jaxmbrl import tuners
from jaxmbrl.tuners import Float, SearchSpace, apply_decision, hyperband, pbt, pbt_bt

SPACE = SearchSpace((Float("a", 0.0, 1.0), Float("b", 0.0, 1.0)))
U_STAR = jnp.array([0.7, 0.3])
EXAMPLE = {"progress": jnp.float32(0.0)}


def gain(u):
    return 1.0 - 4.0 * jnp.sum((u - U_STAR) ** 2, axis=-1)


def dist(u):
    return jnp.linalg.norm(u - U_STAR, axis=-1)


def make_run(tuner, steps):
    """A jitted run of `steps` updates; returns (final state, decisions [steps + 1])."""
    n = tuner.population_size

    def run(key):
        k_init, k_run = jax.random.split(key)
        state = tuner.init(k_init, EXAMPLE)
        members = {"progress": jnp.zeros((n,), jnp.float32)}

        def body(carry, key):
            state, members = carry
            d = state.decision
            fresh = {"progress": jnp.zeros((n,), jnp.float32)}
            members = apply_decision(members, d, tuner.archive(state), fresh)
            members = {"progress": members["progress"] + gain(d.hparams)}
            state, _ = tuner.update(key, state, members["progress"], members)
            return (state, members), d

        (state, _), ds = jax.lax.scan(body, (state, members), jax.random.split(k_run, steps))
        ds = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), ds, state.decision)
        return state, ds

    return jax.jit(run)


# ----------------------------------------------------------------------------- helpers


def test_rank_fitness_puts_invalid_last_and_breaks_ties_by_index():
    f = jnp.array([1.0, jnp.nan, 3.0, -jnp.inf, 3.0, jnp.inf, -5.0])
    np.testing.assert_array_equal(tuners.rank_fitness(f), [2, 4, 0, 5, 1, 6, 3])
    clean, valid = tuners.sanitize_fitness(f)
    np.testing.assert_array_equal(valid, [1, 0, 1, 0, 1, 0, 1])
    assert bool(jnp.all(clean[~valid] == -jnp.inf))


def test_fitness_is_mean_of_last_three_returns():
    r = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 0.0, jnp.nan, 1.0, 1.0]])
    f = tuners.fitness_from_returns(r)
    assert float(f[0]) == pytest.approx(4.0)
    assert bool(jnp.isnan(f[1]))


def test_apply_decision_gathers_members_and_archive_and_restarts():
    members = {"w": jnp.arange(4.0)[:, None] * jnp.ones((4, 2))}
    archive = {"w": jnp.full((2, 2), 100.0) + jnp.arange(2.0)[:, None]}
    fresh = {"w": jnp.full((4, 2), -1.0)}
    d = tuners.Decision(
        source=jnp.array([0, 3, 5, 2], jnp.int32),
        restart=jnp.array([False, False, False, True]),
        hparams=jnp.zeros((4, 2)),
        changed=jnp.zeros((4,), bool),
        budget=jnp.ones((4,), jnp.int32),
    )
    out = apply_decision(members, d, archive, fresh)["w"][:, 0]
    np.testing.assert_array_equal(out, [0.0, 3.0, 101.0, -1.0])


# ----------------------------------------------------------------------------- PBT


def copies_over_keys(tuner, fitness, num_keys=200):
    state = tuner.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(1), num_keys)
    _, d = jax.jit(jax.vmap(tuner.update, in_axes=(0, None, None)))(keys, state, fitness)
    return state, jax.tree.map(np.asarray, d)


@pytest.mark.parametrize(
    "preset, n, n_parents, n_copy",
    [
        ("zhang2021", 10, 2, 2),
        ("zhang2021", 5, 1, 1),
        ("zhang2021", 40, 8, 8),
        ("ray_tune", 10, 3, 3),
    ],
)
def test_pbt_copies_exactly_the_members_its_rule_names(preset, n, n_parents, n_copy):
    q = {"zhang2021": 0.2, "ray_tune": 0.25}[preset]
    assert tuners.quantile_counts(n, q, preset) == (n_parents, n_copy)
    perm = np.random.default_rng(n).permutation(n)
    fitness = jnp.asarray(perm, jnp.float32)  # member with value n-1 is best
    best = set(np.argsort(-perm)[:n_parents])
    worst = set(np.argsort(-perm)[n - n_copy :])
    tuner = pbt(SPACE, n, preset=preset, resample_probability=0.0)
    state, d = copies_over_keys(tuner, fitness)
    for i in range(n):
        if i in worst:
            assert set(d.source[:, i]) == best  # every top member gets picked, nothing else
            assert d.changed[:, i].all()
            parent_hp = np.asarray(state.decision.hparams)[d.source[:, i]]
            ok = np.isclose(d.hparams[:, i], np.clip(0.8 * parent_hp, 0, 1))
            ok |= np.isclose(d.hparams[:, i], np.clip(1.2 * parent_hp, 0, 1))
            assert ok.all()
        else:
            assert (d.source[:, i] == i).all() and not d.changed[:, i].any()
            assert (d.hparams[:, i] == np.asarray(state.decision.hparams[i])).all()
    assert not d.restart.any()
    assert (d.budget == 5).all()


def test_pbt_invalid_fitness_ranks_last_and_is_never_a_parent():
    fitness = jnp.array([jnp.nan, 5.0, -jnp.inf, 3.0, 2.0, 1.0, 0.0, jnp.inf, 6.0, 7.0])
    tuner = pbt(SPACE, 10)
    _, d = copies_over_keys(tuner, fitness)
    invalid = [0, 2, 7]
    assert set(np.unique(d.source[:, invalid])) == {8, 9}  # invalid members all copy the best
    for i in invalid:
        assert not (d.source == i).any()  # never chosen as a parent (nor kept)
    # more invalid members than the bottom quantile: all still copy the one valid member
    f2 = jnp.array([jnp.nan, jnp.nan, jnp.nan, -jnp.inf, 1.0])
    small = pbt(SPACE, 5)
    _, d2 = copies_over_keys(small, f2)
    assert (d2.source == 4).all()
    # nobody valid: nobody copies, no crash
    _, d3 = copies_over_keys(small, jnp.full((5,), jnp.nan))
    assert (d3.source == np.arange(5)).all() and np.isfinite(d3.hparams).all()


def test_pbt_moves_towards_the_optimum():
    tuner = pbt(SPACE, 16)
    state, ds = make_run(tuner, 30)(jax.random.key(3))
    start, end = float(dist(ds.hparams[0]).mean()), float(dist(ds.hparams[-1]).mean())
    assert end < 0.5 * start
    assert ds.changed[1:].sum() > 0 and (ds.budget[0] == 6).all() and (ds.budget[1:] == 5).all()


# ----------------------------------------------------------------------------- random search


def test_random_search_never_copies_and_improves_its_incumbent():
    tuner = tuners.random_search(SPACE, 8, steps_per_config=1)
    state, ds = make_run(tuner, 30)(jax.random.key(4))
    assert (ds.source == np.arange(8)).all()
    assert ds.restart[1:].all()  # a new configuration every step
    assert float(dist(state.best_hparams)) < 0.1
    assert float(dist(state.best_hparams)) < float(dist(ds.hparams[0]).min())
    static = tuners.random_search(SPACE, 8)
    _, ds2 = make_run(static, 5)(jax.random.key(4))
    assert not ds2.restart[1:].any() and (ds2.hparams == ds2.hparams[0]).all()


def test_random_search_incumbent_ignores_invalid_fitness():
    tuner = tuners.random_search(SPACE, 3)
    state = tuner.init(jax.random.key(0))
    state, _ = tuner.update(jax.random.key(1), state, jnp.array([1.0, jnp.nan, jnp.inf]))
    assert float(state.best_fitness) == 1.0
    np.testing.assert_array_equal(state.best_hparams, state.decision.hparams[0])


# ----------------------------------------------------------------------------- PBT-BT


def bt_step(tuner, state, fitness, members, key=0):
    return jax.jit(tuner.update)(jax.random.key(key), state, jnp.asarray(fitness), members)


def test_pbt_bt_backtracks_when_and_only_when_the_tolerance_is_crossed():
    n = 4  # K = ceil(0.125 * 4) = 1 elite
    tuner = pbt_bt(SPACE, n, delta_t=2, tolerance=0.2, resample_probability=0.0)
    state = tuner.init(jax.random.key(0), EXAMPLE)
    m1 = {"progress": jnp.array([10.0, 5.0, 5.0, 5.0])}
    state, d1 = bt_step(tuner, state, m1["progress"], m1)  # step 1: no check
    assert (np.asarray(d1.source) < n).all()
    assert int(state.archive.member[0]) == 0 and float(state.archive.score[0]) == 10.0
    m2 = {"progress": jnp.array([9.0, 8.1, 7.9, jnp.nan])}  # relative drops -0.1 -0.19 -0.21 nan
    state, d2 = bt_step(tuner, state, m2["progress"], m2)  # step 2: check
    np.testing.assert_array_equal(d2.source, [0, 1, n, n])
    np.testing.assert_array_equal(d2.changed, [False, False, True, True])
    assert float(state.archive.score[0]) == 10.0 and int(state.archive.step[0]) == 1
    new = apply_decision(m2, d2, tuner.archive(state))["progress"]
    np.testing.assert_allclose(new, [9.0, 8.1, 10.0, 10.0])  # 2, 3: the step-1 checkpoint
    elite_hp = np.asarray(state.archive.hparams[0])
    for i in (2, 3):
        ok = np.isclose(d2.hparams[i], np.clip(0.8 * elite_hp, 0, 1))
        ok |= np.isclose(d2.hparams[i], np.clip(1.2 * elite_hp, 0, 1))
        assert ok.all()
    # step 3 is not a check: the same drops only trigger ordinary truncation (member sources)
    state, d3 = bt_step(tuner, state, m2["progress"], m2)
    assert (np.asarray(d3.source) < n).all()


def test_pbt_bt_archive_keeps_best_checkpoint_per_member_and_never_invalid():
    tuner = pbt_bt(SPACE, 16, delta_t=100)  # K = 2
    state = tuner.init(jax.random.key(0), EXAMPLE)
    f1 = jnp.full((16,), jnp.nan).at[3].set(5.0).at[7].set(jnp.inf)
    state, _ = bt_step(tuner, state, f1, {"progress": f1})
    np.testing.assert_array_equal(state.archive.member, [3, -1])  # inf and nan not archived
    f2 = jnp.zeros((16,)).at[3].set(6.0).at[5].set(4.0)
    state, _ = bt_step(tuner, state, f2, {"progress": f2})
    np.testing.assert_array_equal(state.archive.member, [3, 5])  # member 3 once, its best
    np.testing.assert_array_equal(state.archive.score, [6.0, 4.0])
    np.testing.assert_array_equal(state.archive.states["progress"], [6.0, 4.0])
    np.testing.assert_array_equal(state.archive.step, [2, 2])


def test_pbt_bt_tabu_gives_distinct_sign_patterns_then_resamples():
    d = 3  # 8 sign patterns per elite
    space = SearchSpace(tuple(Float(f"x{i}", 0, 1) for i in range(d)))
    tuner = pbt_bt(space, 8, delta_t=1, resample_probability=0.0, initial="default")  # K = 1
    state = tuner.init(jax.random.key(0), EXAMPLE)
    f = jnp.array([10.0, 1, 1, 1, 1, 1, 1, 1])
    state, d1 = bt_step(tuner, state, f, {"progress": f})
    elite_hp = np.asarray(state.archive.hparams[0])
    assert (np.asarray(d1.source) == [0] + [8] * 7).all()
    up = np.isclose(np.asarray(d1.hparams[1:]), 1.2 * elite_hp)
    down = np.isclose(np.asarray(d1.hparams[1:]), 0.8 * elite_hp)
    assert (up ^ down).all()  # default u = 0.5: never clipped
    assert len({tuple(s) for s in up}) == 7  # seven distinct sign patterns
    assert int(state.archive.tried.sum()) == 7
    state, d2 = bt_step(tuner, state, f, {"progress": f}, key=1)
    hp2 = np.asarray(d2.hparams[1:])
    patterned = np.all(np.isclose(hp2, 1.2 * elite_hp) | np.isclose(hp2, 0.8 * elite_hp), axis=1)
    assert patterned.sum() == 1  # the last untried pattern; the other six are resampled
    assert int(state.archive.tried.sum()) == 8


def test_pbt_bt_moves_towards_the_optimum():
    tuner = pbt_bt(SPACE, 16, delta_t=5)
    state, ds = make_run(tuner, 30)(jax.random.key(5))
    assert float(dist(ds.hparams[-1]).mean()) < 0.5 * float(dist(ds.hparams[0]).mean())
    assert (ds.source >= 16).any()  # it did backtrack at some check


def test_pbt_bt_needs_member_states_and_valid_settings():
    with pytest.raises(ValueError, match="example_member_state"):
        pbt_bt(SPACE, 4).init(jax.random.key(0))
    with pytest.raises(ValueError, match="tolerance=-0.2"):
        pbt_bt(SPACE, 4, tolerance=-0.2)
    with pytest.raises(ValueError, match="D <= 12"):
        pbt_bt(SearchSpace(tuple(Float(f"x{i}", 0, 1) for i in range(13))), 4)
    with pytest.raises(ValueError, match="unknown PBT option"):
        pbt(SPACE, 4, quantil=0.2)
    with pytest.raises(ValueError, match="unknown PBT preset 'ray'"):
        pbt(SPACE, 4, preset="ray")


# ----------------------------------------------------------------------------- Hyperband


@pytest.mark.parametrize(
    "r, eta, expected",
    [
        (9, 3, [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)], [(3, 9)]]),
        (
            27,
            3,
            [
                [(27, 1), (9, 3), (3, 9), (1, 27)],
                [(12, 3), (4, 9), (1, 27)],
                [(6, 9), (2, 27)],
                [(4, 27)],
            ],
        ),
        (
            8,
            2,
            [
                [(8, 1), (4, 2), (2, 4), (1, 8)],
                [(6, 2), (3, 4), (1, 8)],
                [(4, 4), (2, 8)],
                [(4, 8)],
            ],
        ),
        (  # Li et al. (2018), Table 1
            81,
            3,
            [
                [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
                [(34, 3), (11, 9), (3, 27), (1, 81)],
                [(15, 9), (5, 27), (1, 81)],
                [(8, 27), (2, 81)],
                [(5, 81)],
            ],
        ),
    ],
)
def test_hyperband_brackets_match_li_et_al(r, eta, expected):
    assert tuners.brackets(r, eta) == expected


def test_hyperband_s_max_is_robust_to_float_error():
    assert math.floor(math.log(243) / math.log(3)) == 4  # the float formula is off by one
    assert len(tuners.brackets(243, 3)) == 6
    assert len(tuners.brackets(242, 3)) == 5
    with pytest.raises(ValueError, match="eta=1"):
        tuners.brackets(9, 1)
    with pytest.raises(ValueError, match="max_budget=0"):
        tuners.brackets(0, 3)


def run_hyperband(n, r, eta, key=0, nan_above=None, iterations=1):
    """Host loop, one trial per update; records each slot's trained trials after every step."""
    tuner = hyperband(SPACE, n, r, eta=eta, num_iterations=iterations)
    update = jax.jit(tuner.update)
    state = tuner.init(jax.random.key(key))
    trained = np.zeros(n, int)
    log = []
    u_star = np.asarray(U_STAR)
    for _ in range(2000):
        if (np.asarray(state.job_status) == 2).all():  # host-side is_done: no eager jnp ops
            break
        d = jax.tree.map(np.asarray, state.decision)
        trained = np.where(d.restart, 0, trained) + (d.budget > 0)
        f = 1.0 - 4.0 * np.sum((d.hparams - u_star) ** 2, axis=-1) + 1e-3 * trained
        if nan_above is not None:
            f = np.where(d.hparams[:, 0] > nan_above, np.nan, f)
        log.append(trained.copy())
        state, _ = update(jax.random.key(0), state, jnp.asarray(f, jnp.float32))
    assert tuners.is_done(state)
    return tuner, update, state, np.array(log)


@pytest.mark.parametrize("n, r, eta, iterations", [(9, 9, 3, 1), (2, 9, 3, 1), (4, 8, 2, 2)])
def test_hyperband_runs_the_prescribed_jobs_and_promotes_the_best(n, r, eta, iterations):
    _, _, state, log = run_hyperband(n, r, eta, nan_above=0.9, iterations=iterations)
    everything = tuners.history(state)
    plan = tuners.brackets(r, eta)
    if (r, eta) == (9, 3):  # by hand: 9 x 1 trial, 3 + 5 x 3 trials, 1 + 1 + 3 x 9 trials
        assert collections.Counter(h["budget"] for h in everything) == {1: 9, 3: 8, 9: 5}
    assert len(everything) == iterations * sum(n_i for b in plan for n_i, _ in b)
    for it, bracket in itertools.product(range(iterations), plan):
        hist = [h for h in everything if h["iteration"] == it]
        s = len(bracket) - 1
        for i, (n_i, r_i) in enumerate(bracket):
            rung = [h for h in hist if h["bracket"] == s and h["rung"] == i]
            assert len(rung) == n_i and all(h["budget"] == r_i for h in rung)
            if i + 1 < len(bracket):
                key = lambda h: (-(h["result"] if np.isfinite(h["result"]) else -np.inf), h["job"])
                best = {h["config"] for h in sorted(rung, key=key)[: n_i // eta]}
                nxt = {h["config"] for h in hist if h["bracket"] == s and h["rung"] == i + 1}
                assert nxt == best, (s, i)
        assert len({h["config"] for h in hist if h["bracket"] == s}) == bracket[0][0]
    assert len({h["config"] for h in everything}) == iterations * sum(b[0][0] for b in plan)
    end = np.asarray(state.job_end)
    for h in everything:  # each result is taken after exactly r_i trials of training
        assert log[end[h["job"]] - 1, h["slot"]] == h["budget"]
    continued = [h["continued"] for h in everything if h["rung"] > 0]
    if n >= plan[0][0][0]:
        assert all(continued)  # enough slots: every promotion resumes its checkpoint


def test_hyperband_promotions_move_towards_the_optimum():
    _, _, state, _ = run_hyperband(9, 27, 3, key=1)
    hist = tuners.history(state)
    first = [h for h in hist if h["bracket"] == 3]
    d0 = np.mean([float(dist(h["hparams"])) for h in first if h["rung"] == 0])
    d2 = np.mean([float(dist(h["hparams"])) for h in first if h["rung"] == 2])
    assert d2 < 0.6 * d0
    best, hp = tuners.incumbent(state)
    assert np.isfinite(best) and float(dist(hp)) < d0


# ----------------------------------------------------------------------------- compilation


@pytest.mark.parametrize("name", tuners.TUNERS)
def test_update_is_jitted_once_across_steps(name):
    make = {
        "random_search": lambda: tuners.random_search(SPACE, 6, steps_per_config=2),
        "hyperband": lambda: hyperband(SPACE, 6, 9),
        "pbt": lambda: pbt(SPACE, 6),
        "pbt_bt": lambda: pbt_bt(SPACE, 6, delta_t=2),
        "pb2": lambda: tuners.pb2(SPACE, 6),
        "bohb": lambda: tuners.bohb(SPACE, 6, 9),
    }[name]
    tuner = make()
    update = jax.jit(tuner.update)
    state = tuner.init(jax.random.key(0), EXAMPLE)
    with count_compiles() as compiled:
        for t in range(4):
            f = jax.random.normal(jax.random.key(t), (6,))
            state, d = update(jax.random.key(t), state, f, {"progress": f})
            assert d.source.dtype == jnp.int32 and d.hparams.shape == (6, 2)
    assert compiled.count(update) == 1


# ----------------------------------------------------------------------------- schedules


def test_recorded_schedule_replays_exactly_and_ignores_fitness():
    tuner = pbt(SPACE, 8)
    _, ds = make_run(tuner, 12)(jax.random.key(6))
    replay = tuners.make_schedule_replay(ds, SPACE)
    _, again = make_run(replay, 12)(jax.random.key(99))  # other seed, other fitness
    for a, b in zip(jax.tree.leaves(ds), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    rec = tuners.record(jax.tree.map(lambda x: x[3], ds), SPACE)
    assert set(rec) == {"parent", "restart", "changed", "budget", "hparams", "values"}
    assert rec["values"]["a"].shape == (8,)
    own = tuners.make_schedule_replay(ds, SPACE, copy_sources=False)
    _, kept = make_run(own, 12)(jax.random.key(99))
    assert (np.asarray(kept.source) == np.arange(8)).all()
    np.testing.assert_array_equal(kept.hparams, ds.hparams)


def test_lineage_follows_parents_back_to_the_start():
    hp = jnp.arange(3 * 3 * 2, dtype=jnp.float32).reshape(3, 3, 2)
    sched = tuners.hparams_schedule(hp, 3, 5)
    sched = sched._replace(source=sched.source.at[1, 2].set(0).at[2, 1].set(2))
    slots, path = tuners.lineage(sched, 1)
    np.testing.assert_array_equal(slots, [0, 2, 1])  # 1 <- 2 (step 2) <- 0 (step 1)
    np.testing.assert_array_equal(path, hp[[0, 1, 2], [0, 2, 1]])
    with pytest.raises(ValueError, match="archive checkpoint"):
        tuners.lineage(sched._replace(source=sched.source.at[2, 1].set(4)), 1)
    with pytest.raises(ValueError, match="copy_sources=False"):
        tuners.make_schedule_replay(sched._replace(source=sched.source.at[2, 1].set(4)), SPACE)


@pytest.mark.parametrize("reference", ["mean", "random"])
def test_pbt_bt_other_elite_references_trace(reference):
    tuner = pbt_bt(SPACE, 8, elite_reference=reference, tabu=False)
    state = tuner.init(jax.random.key(0), EXAMPLE)
    f = jnp.zeros((8,))
    out, d = jax.eval_shape(tuner.update, jax.random.key(1), state, f, {"progress": f})
    assert d.source.shape == (8,) and out.archive.score.shape == (1,)
    with pytest.raises(ValueError, match="'median'"):
        pbt_bt(SPACE, 8, elite_reference="median")
