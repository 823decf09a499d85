"""A vmapped PETS population on real MJX: members equal solo runs, one compiled program,
and a member whose physics or model blows up is contained and replaced."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compiles import count_compiles

from jaxmbrl import envs, experiments, tuners
from jaxmbrl import population as population_lib
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets

N, TRIALS, STEPS = 3, 2, 20


@pytest.fixture(scope="module")
def setup():
    env = envs.load("cartpole")
    space = tuners.get_space("planning")
    # Chunks of 16 of the tiny CEM population (18..64 candidates): 2-4 chunks per member.
    config, space = experiments.config_for_space(
        env, "tiny", TRIALS, space, trial_length=STEPS, candidate_chunk=16
    )
    agent = pets_lib.make_pets(env, config)
    to_hparams = experiments.unit_to_hparams(space, presets.study_hparams(agent))
    return env, space, config, agent, to_hparams


def _run(init, step, unit, steps=TRIALS, seed=0):
    """`steps` trials of every member, stepped masked with all active (as a tuning run)."""
    state = init(jax.random.PRNGKey(seed), unit)
    metrics = []
    for _ in range(steps):
        state, m = step(state, jnp.ones((N,), bool))
        metrics.append(jax.device_get(m))
    return state, metrics


@pytest.fixture(scope="module")
def grouped(setup):
    """member_batch -> (population, jitted init, jitted step), built once for the module so
    the tests of one mapping share its compiled programs."""
    _, _, _, agent, to_hparams = setup
    made = {}

    def get(member_batch):
        if member_batch not in made:
            population = population_lib.make_population(
                agent, N, to_hparams, member_batch=member_batch
            )
            made[member_batch] = population, jax.jit(population.init), jax.jit(population.step)
        return made[member_batch]

    return get


@pytest.fixture(scope="module")
def population_run(setup, grouped):
    """All members in one vmap, stepped masked with every member active as a tuning run
    steps them: the program that test_idle_members_keep_their_state[None] reuses."""
    _, space, _, _, _ = setup
    population, init, step = grouped(None)
    unit = space.sample_unit(jax.random.PRNGKey(7), N)
    return population, unit, _run(init, step, unit)


def test_members_equal_solo_runs(setup, population_run, grouped):
    _, _, _, agent, _ = setup
    _, unit, (final, metrics) = population_run
    start = grouped(None)[1](jax.random.PRNGKey(0), unit)
    solo = jax.jit(agent.trial_and_train)
    hparams = start.hparams
    assert len({int(h) for h in hparams.planner.horizon}) > 1  # members really differ
    for i in range(N):
        member = jax.tree.map(lambda x, i=i: x[i], start.members.agents)
        member_hparams = jax.tree.map(lambda x, i=i: x[i], hparams)
        key = start.key
        for trial in range(TRIALS):
            key, step_key = jax.random.split(key)
            member, m = solo(jax.random.split(step_key, N)[i], member, member_hparams)
            np.testing.assert_allclose(
                m["trial_return"], metrics[trial]["trial_return"][i], rtol=1e-4, atol=1e-4
            )
        final_member = jax.tree.map(lambda x, i=i: x[i], final.members.agents)
        for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(final_member), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("member_batch", [1, 2])
def test_members_in_groups_equal_the_vmapped_population(
    setup, population_run, grouped, member_batch
):
    """lax.map over groups (2: members sorted by planning work, a group of 2 and a remainder
    of 1) computes the same members. The groups run masked with every member active, as a
    tuning run steps them (the program `test_idle_members_keep_their_state` reuses)."""
    _, _, _, agent, _ = setup
    _, unit, (final, metrics) = population_run
    work = jax.vmap(agent.member_work)(grouped(None)[1](jax.random.PRNGKey(0), unit).hparams)
    assert np.argsort(np.asarray(work), kind="stable").tolist() != list(range(N))  # reordered
    _, init, step = grouped(member_batch)
    state = init(jax.random.PRNGKey(0), unit)
    metrics_g = []
    for _ in range(TRIALS):
        state, m = step(state, jnp.ones((N,), bool))
        metrics_g.append(jax.device_get(m))
    final_g = state
    for m, m_g in zip(metrics, metrics_g, strict=True):
        np.testing.assert_allclose(m_g["trial_return"], m["trial_return"], rtol=1e-4, atol=1e-4)
    for a, b in zip(
        jax.tree.leaves(final_g.members.agents), jax.tree.leaves(final.members.agents), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("member_batch", [None, 1, 2])
def test_idle_members_keep_their_state(population_run, grouped, member_batch):
    """Hyperband's waiting slots: an inactive member's state and record do not move."""
    _, unit, _ = population_run
    _, init, step = grouped(member_batch)
    start = init(jax.random.PRNGKey(0), unit)
    active = jnp.array([True, False, True])
    masked, _ = step(start, active)
    everyone, _ = step(start, jnp.ones((N,), bool))
    member = lambda state, i: jax.tree.map(lambda x: x[i], state.members)  # noqa: E731
    for a, b in zip(
        jax.tree.leaves(member(masked, 1)), jax.tree.leaves(member(start, 1)), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    for i in (0, 2):
        assert int(masked.members.trials[i]) == 1
        for a, b in zip(
            jax.tree.leaves(member(masked, i)),
            jax.tree.leaves(member(everyone, i)),
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_apply_copies_and_restarts(population_run):
    """source gathers members; restart gives slot 1 a fresh agent, the others are copies."""
    population, unit, (state, _) = population_run
    apply = jax.jit(population.apply)
    copy = tuners.Decision(
        source=jnp.array([2, 2, 0], jnp.int32),
        restart=jnp.zeros((N,), bool),
        hparams=unit,
        changed=jnp.zeros((N,), bool),
        budget=jnp.ones((N,), jnp.int32),
    )
    with count_compiles() as compiled:
        copied = apply(state, copy)
        restarted = apply(state, copy._replace(restart=jnp.array([False, True, False])))
    assert compiled.count(apply) == 1
    for new, old in zip(
        jax.tree.leaves(copied.members), jax.tree.leaves(state.members), strict=True
    ):
        np.testing.assert_array_equal(new, old[np.array([2, 2, 0])])
    trials = np.asarray(state.members.trials)
    assert np.asarray(restarted.members.trials).tolist() == [trials[2], 0, trials[0]]
    assert np.all(np.isnan(np.asarray(restarted.members.recent_returns[1])))
    assert int(restarted.members.agents.replay.size[1]) == 0
    np.testing.assert_array_equal(
        restarted.members.agents.replay.size[np.array([0, 2])],
        state.members.agents.replay.size[np.array([2, 0])],
    )


def test_member_batch_flag_values():
    cpu = jax.default_backend() == "cpu"
    # Auto: one at a time on CPU; on an accelerator ACCELERATOR_GROUPS (8) sorted groups of
    # at least 2 members.
    assert population_lib.resolve_member_batch(0, 8) == (1 if cpu else 2)
    assert population_lib.resolve_member_batch(0, 40) == (1 if cpu else 5)
    assert population_lib.resolve_member_batch(0, 2) == (1 if cpu else None)
    assert population_lib.resolve_member_batch(0, 1) is None
    assert population_lib.resolve_member_batch(3, 8) == 3
    assert population_lib.resolve_member_batch(8, 8) is None
    with pytest.raises(ValueError, match="member_batch=-1"):
        population_lib.resolve_member_batch(-1, 8)
    with pytest.raises(ValueError, match="member_batch=0"):
        population_lib.map_members(lambda x: x, 0)


@pytest.mark.parametrize("member_batch", [None, 1, 4])
def test_one_member_is_never_vmapped_so_a_cond_stays_a_branch(member_batch):
    # Under vmap a lax.cond becomes a select that computes both branches (CEM's sampling
    # and update on every tick); a population of one must keep the real branch.
    def fn(x):
        return jax.lax.cond(x[0] > 0, lambda y: jnp.sort(y) * 2.0, lambda y: y, x)

    mapped = jax.jit(population_lib.map_members(fn, member_batch))
    one = jnp.array([[3.0, -1.0, 2.0]])
    assert "stablehlo.case" in mapped.lower(one).as_text()
    np.testing.assert_array_equal(mapped(one), [[-2.0, 4.0, 6.0]])
    two = jnp.array([[3.0, -1.0, 2.0], [-3.0, 1.0, 0.0]])  # still mapped as before
    np.testing.assert_array_equal(mapped(two), [[-2.0, 4.0, 6.0], [-3.0, 1.0, 0.0]])


def test_one_program_across_steps_and_decisions(setup, population_run, grouped):
    _, space, _, _, _ = setup
    population, unit, (state, _) = population_run
    step = grouped(None)[2]
    tuner = tuners.pbt(space, N, step_trials=1, first_step_trials=1)
    tuner_state = tuner.init(jax.random.PRNGKey(1))
    update = jax.jit(tuner.update)
    apply = jax.jit(population.apply)
    with count_compiles() as compiled:
        for i in range(2):
            tuner_state, decision = update(
                jax.random.PRNGKey(i), tuner_state, population.fitness(state)
            )
            state = apply(state, decision)
            state, _ = step(state, jnp.ones((N,), bool))
    # <= 1: test_apply_copies_and_restarts may already have compiled this population's apply.
    assert compiled.count(step) <= 1 and compiled.count(apply) <= 1
    assert compiled.count(update) == 1


def test_grouped_population_one_program_when_horizons_change(setup, population_run, grouped):
    """Sorting by work is traced: new horizons regroup the members without recompiling."""
    _, space, _, agent, _ = setup
    _, unit, _ = population_run
    population, init, step = grouped(2)
    state = init(jax.random.PRNGKey(0), unit)
    apply = jax.jit(population.apply)
    horizon = space.names.index("plan_hor")
    orders = []
    for horizons in ([0.0, 0.5, 1.0], [1.0, 0.0, 0.5]):
        # The programs may be compiled (or shared with other tests) by the first pass; the
        # second pass, with other horizons, must compile nothing.
        with count_compiles() as compiled:
            new_unit = unit.at[:, horizon].set(jnp.asarray(horizons))
            decision = tuners.Decision(
                source=jnp.arange(N, dtype=jnp.int32),
                restart=jnp.zeros((N,), bool),
                hparams=new_unit,
                changed=jnp.ones((N,), bool),
                budget=jnp.ones((N,), jnp.int32),
            )
            state = apply(state, decision)
            state, metrics = step(state, jnp.ones((N,), bool))
        assert np.all(np.isfinite(np.asarray(metrics["trial_return"])))
        orders.append(np.argsort(np.asarray(jax.vmap(agent.member_work)(state.hparams))))
    assert orders[0].tolist() != orders[1].tolist()  # the groups really changed
    assert compiled.count(step) == 0 and compiled.count(apply) == 0


@pytest.mark.slow
def test_diverging_members_are_contained_and_replaced(setup):
    """Member 1's physics blows up (an unstable cart-pole), member 2's model goes
    non-finite (absurd learning rate); member 0 must be exactly as without them. The clean
    and the broken run are one program: which member breaks is data (a marker added to its
    first unit coordinate), so the comparison is between two runs of the same executable."""
    env, space, config, agent, to_hparams = setup
    unstable = pets_lib.make_pets(envs.load("cartpole", gear=1e12), config)

    class Forced:
        init = agent.init

        @staticmethod
        def trial_and_train(key, state, hparams):
            # Members with alpha == 0 (a marker) act in the unstable env.
            return jax.lax.cond(
                hparams.planner.alpha == 0.0,
                unstable.trial_and_train,
                agent.trial_and_train,
                key,
                state,
                hparams,
            )

    def forced_hparams(unit):
        # unit[:, 0] + 10 * marker: 1 breaks the physics (alpha 0), 2 the model (lr 1e30).
        marker = jnp.floor(unit[:, 0] / 10.0)
        hparams = to_hparams(unit.at[:, 0].add(-10.0 * marker))
        alpha = jnp.where(marker == 1, 0.0, hparams.planner.alpha)
        lr = jnp.where(marker == 2, 1e30, hparams.model.learning_rate)
        return hparams._replace(
            planner=hparams.planner._replace(alpha=alpha),
            model=hparams.model._replace(learning_rate=lr),
        )

    unit = space.sample_unit(jax.random.PRNGKey(7), N)
    marked = unit.at[1, 0].add(10.0).at[2, 0].add(20.0)
    broken = population_lib.make_population(Forced, N, forced_hparams)
    init, step = jax.jit(broken.init), jax.jit(broken.step)
    with count_compiles() as compiled:
        clean_state, clean_metrics = _run(init, step, unit, steps=3)
        state, metrics = _run(init, step, marked, steps=3)
    assert compiled.count(step) == 1  # the same executable for both runs
    assert float(clean_state.hparams.planner.alpha[1]) > 0
    assert float(state.hparams.planner.alpha[1]) == 0
    assert not np.asarray(clean_state.members.failed).any()

    assert metrics[1]["diverged"][1] == 1.0  # first planned trial in the unstable env
    assert metrics[0]["model/nonfinite"][2] == 1.0
    assert np.asarray(state.members.failed).tolist() == [False, True, True]
    fitness = np.asarray(broken.fitness(state))
    assert np.isfinite(fitness[0]) and fitness[1] == fitness[2] == -np.inf
    for m in metrics:  # what is logged stays finite for the physics member
        assert np.all(np.isfinite(np.asarray(m["trial_return"])[:2]))
    # Member 0 is untouched by its neighbours' blow-ups.
    for a, b in zip(
        jax.tree.leaves(jax.tree.map(lambda x: x[0], clean_state.members)),
        jax.tree.leaves(jax.tree.map(lambda x: x[0], state.members)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    for ma, mb in zip(clean_metrics, metrics, strict=True):
        assert ma["trial_return"][0] == mb["trial_return"][0]

    # PBT replaces both failed members by the healthy one; failure flags are cleared.
    tuner = tuners.pbt(space, N, step_trials=1, first_step_trials=1)
    tuner_state, decision = tuner.update(
        jax.random.PRNGKey(0), tuner.init(jax.random.PRNGKey(1)), jnp.asarray(fitness)
    )
    assert np.asarray(decision.source).tolist() == [0, 0, 0]
    replaced = broken.apply(state, decision)
    assert not np.asarray(replaced.members.failed).any()
    assert np.isfinite(np.asarray(broken.fitness(replaced))).all()
