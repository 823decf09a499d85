"""A population of agents, each with its own hyperparameters, as one compiled program.

The population state is one pytree whose leaves carry a leading member axis: agent states
(model, optimiser, normaliser, replay buffer), hyperparameters, the recent returns used as
fitness, and failure flags. One call of `step` advances every member by one trial with a
single compiled `jax.vmap` of the agent's `trial_and_train`, or, with `member_batch=k`, a
`lax.map` over groups of k vmapped members. Exploit (PBT's copy of a better member, PBT-BT's
return to an archived elite) is a gather over the member axis.

Why `member_batch`: a vmapped loop runs to the largest trip count among its members (every
member plans at the longest horizon and the most CEM iterations in the population) and its
working set grows with N. An accelerator wants the width anyway; a CPU, where one member
already fills the cores, is faster with small groups: each member's loops stop at its own
horizon and iterations, and activations stay in cache (`benchmarks/throughput.py` measures
both). It is the same computation either way; only float rounding differs (batched and
single kernels), which CEM's ranking can amplify over many trials.

Groups of similar work: when members run in groups (1 < member_batch < N) and the agent
has `member_work(hparams)` (PETS: iterations x executed CEM candidates x horizon), `step`
sorts the members by it (a traced argsort), gathers them in that order, maps the groups
and scatters the results back with the inverse permutation. Each group's loops then stop
at the group's own maxima instead of the population's; membership is traced, so changing
hyperparameters never recompiles. The accelerator default (`resolve_member_batch`) is
`ACCELERATOR_GROUPS` such groups.

Fitness follows Zhang et al. (AISTATS 2021): the mean return of a member's last 3 trials.
A member whose physics diverged or whose model went non-finite is marked failed and gets
-inf fitness, so it ranks last and never becomes a parent; its numbers never enter another
member's computation (vmap keeps members independent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import chex
import jax
import jax.numpy as jnp

from jaxmbrl.batching import batched_map
from jaxmbrl.tuners.base import Decision, apply_decision


class Members(NamedTuple):
    """Per-member state that a tuner copies or archives (leading axis N)."""

    agents: Any
    recent_returns: jax.Array  # [N, window] float32, NaN where no trial yet
    trials: jax.Array  # [N] int32, trials since the member's (re)start
    failed: jax.Array  # [N] bool


class PopulationState(NamedTuple):
    members: Members
    hparams: Any  # agent hyperparameters, leading axis N
    key: jax.Array


class StepFn(Protocol):
    def __call__(
        self, state: PopulationState, active: jax.Array | None = None
    ) -> tuple[PopulationState, dict[str, jax.Array]]:
        """One trial (and model fit) for every active member: (state, metrics [N])."""


class ApplyFn(Protocol):
    def __call__(
        self, state: PopulationState, decision: Decision, archive: Members | None = None
    ) -> PopulationState:
        """A tuner's decision: copies (a gather), restarts and new hyperparameters."""


class Population(NamedTuple):
    size: int
    init: Callable[[jax.Array, jax.Array], PopulationState]
    step: StepFn
    fitness: Callable[[PopulationState], jax.Array]
    apply: ApplyFn


def _failure(metrics: dict[str, jax.Array]) -> jax.Array:
    failed = ~jnp.isfinite(metrics["trial_return"]) | (metrics["diverged"] > 0.5)
    if "model/nonfinite" in metrics:
        failed |= metrics["model/nonfinite"] > 0.5
    return failed


def map_members(fn: Callable, member_batch: int | None = None) -> Callable:
    """fn mapped over a leading member axis of all its arguments.

    Args:
      fn: a function of per-member arguments.
      member_batch: None: one `jax.vmap` over all members; k >= 1: `lax.map` over groups of
        k vmapped members (k == 1: a plain sequential map, no vmap at all).

    Returns:
      The mapped function (what `jax.vmap(fn)` computes, up to float rounding).
    """
    try:
        return batched_map(fn, member_batch)
    except ValueError:
        raise ValueError(f"member_batch={member_batch!r} must be None or an int >= 1") from None


# Groups of vmapped members on an accelerator by default (sorted by work, see the docstring).
ACCELERATOR_GROUPS = 8


def accelerator_member_batch(population_size: int) -> int:
    """Members per group on an accelerator: `ACCELERATOR_GROUPS` groups, at least 2 members
    each (a vmap of one member leaves an accelerator idle)."""
    return max(2, -(-population_size // ACCELERATOR_GROUPS))


# The help of every binary's --member_batch flag (see `resolve_member_batch`).
MEMBER_BATCH_HELP = (
    "Members per vmap: k runs groups of k in a lax.map (k >= population: one vmap of all); "
    f"0: auto, one at a time on CPU, {ACCELERATOR_GROUPS} groups sorted by work on an "
    "accelerator."
)


def resolve_member_batch(member_batch: int, population_size: int) -> int | None:
    """The `member_batch` a binary's flag asks for: 0 is auto, k >= population is all at once.

    Auto picks one member at a time on a CPU (one member already fills the cores; the loops
    then stop at each member's own horizon and iterations) and `ACCELERATOR_GROUPS` groups
    of vmapped members, sorted by work, on an accelerator (small members alone would leave
    it idle; one vmap of all would run every loop to the population's maxima).
    """
    if member_batch < 0:
        raise ValueError(f"member_batch={member_batch} must be >= 0 (0: auto)")
    if member_batch == 0:
        if population_size <= 1:
            return None
        if jax.default_backend() == "cpu":
            return 1
        member_batch = accelerator_member_batch(population_size)
    return None if member_batch >= population_size else member_batch


def sorted_by_work(mapped: Callable, work_fn: Callable[[Any], jax.Array]) -> Callable:
    """`mapped(keys, agents, hparams, *rest)` run on members sorted by `work_fn(hparams)`.

    A gather by the traced argsort, then the inverse permutation on the results: what
    `mapped` computes, with neighbours of similar work in each group of `lax.map`.
    """

    def run(keys, agents, hparams, *rest):
        order = jnp.argsort(jax.vmap(work_fn)(hparams), stable=True)
        inverse = jnp.argsort(order)
        take = lambda tree, idx: jax.tree.map(lambda x: x[idx], tree)  # noqa: E731
        return take(mapped(*take((keys, agents, hparams, *rest), order)), inverse)

    return run


def make_population(
    agent,
    population_size: int,
    hparams_fn: Callable[[jax.Array], Any],
    fitness_window: int = 3,
    member_batch: int | None = None,
    distribute: Callable[[Callable], Callable] | None = None,
) -> Population:
    """Wraps an agent (`init(key, hparams)`, `trial_and_train(key, state, hparams)`).

    Args:
      agent: any object with pure `init` and `trial_and_train` functions; the metrics of
        `trial_and_train` must include `trial_return` and `diverged`.
      population_size: number of members N (static).
      hparams_fn: maps tuner hyperparameters (unit cube, [N, D]) to the agent's
        hyperparameter pytree with leading axis N (jittable).
      fitness_window: trials averaged into the fitness (the study: 3).
      member_batch: None: `step` vmaps all N members at once; k: a `lax.map` over groups of
        k vmapped members (see the module docstring; `map_members`), sorted by the agent's
        `member_work(hparams)` when it has one and 1 < k < N.
      distribute: wraps `step`'s mapped per-member trial (every argument and result has the
        member axis first), e.g. `experiments.distributed.shard_members` runs it as a
        `shard_map` over devices, each device mapping (and sorting) its own members.

    Returns:
      A `Population` NamedTuple of pure functions:
        init(key, unit_hparams [N, D]) -> PopulationState
        step(state, active=None) -> (state, metrics)   one trial for every active member
        fitness(state) -> [N]                            -inf for failed members
        apply(state, decision, archive=None) -> state    a tuner's decision (gather/restart)
    """
    if population_size < 1:
        raise ValueError(f"population_size={population_size} must be >= 1")
    if fitness_window < 1:
        raise ValueError(f"fitness_window={fitness_window} must be >= 1")
    n = population_size
    work_fn = getattr(agent, "member_work", None)
    # Sorting only helps when there are several groups of more than one member.
    sort = work_fn is not None and member_batch is not None and 1 < member_batch < n
    group = (lambda mapped: sorted_by_work(mapped, work_fn)) if sort else (lambda mapped: mapped)
    distribute = distribute or (lambda mapped: mapped)
    trial_and_train = distribute(group(map_members(agent.trial_and_train, member_batch)))

    def member_step_if_active(key, agent_state, hparams, is_active):
        # An idle member (Hyperband's waiting slots) skips its trial: a real branch when
        # members run one at a time, a select (both computed) under vmap.
        def idle(key, agent_state, hparams):
            shapes = jax.eval_shape(agent.trial_and_train, key, agent_state, hparams)[1]
            return agent_state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        return jax.lax.cond(is_active, agent.trial_and_train, idle, key, agent_state, hparams)

    masked_trial_and_train = distribute(group(map_members(member_step_if_active, member_batch)))

    def fresh_members(key, hparams) -> Members:
        return Members(
            agents=jax.vmap(agent.init)(jax.random.split(key, n), hparams),
            recent_returns=jnp.full((n, fitness_window), jnp.nan, jnp.float32),
            trials=jnp.zeros((n,), jnp.int32),
            failed=jnp.zeros((n,), bool),
        )

    def init(key: chex.PRNGKey, unit_hparams: jax.Array) -> PopulationState:
        chex.assert_rank(unit_hparams, 2)
        chex.assert_axis_dimension(unit_hparams, 0, n)
        init_key, state_key = jax.random.split(key)
        hparams = hparams_fn(unit_hparams)
        return PopulationState(fresh_members(init_key, hparams), hparams, state_key)

    def step(state: PopulationState, active: jax.Array | None = None):
        key, step_key = jax.random.split(state.key)
        old = state.members
        keys = jax.random.split(step_key, n)
        if active is None:
            agents, metrics = trial_and_train(keys, old.agents, state.hparams)
        else:
            chex.assert_shape(active, (n,))
            agents, metrics = masked_trial_and_train(keys, old.agents, state.hparams, active)
        returns = jnp.concatenate(
            [old.recent_returns[:, 1:], metrics["trial_return"][:, None]], axis=1
        )
        trials, failed = old.trials + 1, old.failed | _failure(metrics)
        if active is not None:
            # Idle agents already kept their state in the cond; the record must not move.
            returns = jnp.where(active[:, None], returns, old.recent_returns)
            trials = jnp.where(active, trials, old.trials)
            failed = jnp.where(active, failed, old.failed)
        new = Members(agents, returns, trials, failed)
        return state._replace(members=new, key=key), metrics

    def fitness(state: PopulationState) -> jax.Array:
        returns = state.members.recent_returns
        valid = jnp.isfinite(returns)
        mean = jnp.sum(jnp.where(valid, returns, 0.0), axis=1) / jnp.maximum(
            jnp.sum(valid, axis=1), 1
        )
        ok = ~state.members.failed & jnp.any(valid, axis=1)
        return jnp.where(ok, mean, -jnp.inf)

    def apply(state: PopulationState, decision: Decision, archive: Members | None = None):
        key, init_key = jax.random.split(state.key)
        hparams = hparams_fn(decision.hparams)

        # Fresh agents (replay buffers included) only when some slot restarts: at paper scale
        # they are gigabytes of zeros, and most PBT updates restart nobody.
        def with_restarts(_):
            fresh = fresh_members(init_key, hparams)
            return apply_decision(state.members, decision, archive, fresh)

        def copies_only(_):
            return apply_decision(state.members, decision, archive)

        members = jax.lax.cond(jnp.any(decision.restart), with_restarts, copies_only, None)
        return PopulationState(members, hparams, key)

    return Population(size=n, init=init, step=step, fitness=fitness, apply=apply)
