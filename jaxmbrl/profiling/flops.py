"""FLOP and padding accounting of the PETS planner, and the study's paper-scale projection.

PETS (Chua et al., NeurIPS 2018) plans with the ensemble's forward pass: iterations x CEM
population x particles x horizon rows per action, `forward_flops` FLOPs each. These helpers
count those FLOPs (needed at the actual hyperparameters vs executed by the padded program),
the padding share of a population drawn from a search space, scaling efficiency, and the
wall time of the experiment of Zhang et al. (AISTATS 2021) from measured rates. Generic: the
experiment's sizes are an argument (`jaxmbrl.profiling.throughput.PAPER_EXPERIMENT`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.planning.chunks import executed_population


def planner_work(
    forward_flops: float, iterations: Any, population: Any, horizon: Any, particles: int
) -> dict[str, float]:
    """Model transitions and FLOPs of planning steps: sum over agents of i * p * particles * h.

    Args accept scalars or per-agent arrays; `forward_flops` is one member on one row.
    """
    rows = (
        np.asarray(iterations, np.float64)
        * np.asarray(population, np.float64)
        * np.asarray(horizon, np.float64)
        * float(particles)
    )
    transitions = float(np.sum(rows))
    return dict(transitions=transitions, flops=transitions * float(forward_flops))


def executed_candidates(population: Any, max_population: int, candidate_chunk: int | None) -> Any:
    """Candidates a chunked planner evaluates (`planning.chunks.executed_population`), numpy."""
    chunk = max_population if candidate_chunk is None else min(candidate_chunk, max_population)
    return executed_population(np.asarray(population, np.int64), chunk).astype(np.float64)


def executed_planner_flops(
    forward_flops_padded: float,
    iterations: Any,
    horizon: Any,
    max_population: int,
    particles: int,
    population: Any = None,
    candidate_chunk: int | None = None,
    flat: bool = False,
) -> float:
    """FLOPs the padded, vmapped planner executes for ONE vmapped group of agents.

    Every agent runs the padded network on whole chunks of candidates (all `max_population`
    without `candidate_chunk` or `population`). Loops with traced trip counts run, under
    vmap, to the largest trip count among the agents. Nested loops (a plain cost function):
    agents x max(iterations) x max(executed candidates) x max(horizon) x particles rows.
    `flat` (a `SteppedCost`, what PETS runs): one loop of iterations x chunks x horizon
    ticks, agents x max(iterations x executed candidates x horizon) x particles rows.
    """
    iterations, horizon = np.asarray(iterations, np.float64), np.asarray(horizon, np.float64)
    candidates = np.asarray(float(max_population))
    if population is not None and candidate_chunk is not None:
        candidates = executed_candidates(population, max_population, candidate_chunk)
    agents = max(iterations.size, horizon.size, candidates.size)
    if flat:
        rows = float(np.max(iterations * candidates * horizon))
    else:
        rows = float(np.max(iterations) * np.max(candidates) * np.max(horizon))
    return agents * rows * particles * float(forward_flops_padded)


def space_means(space: Any, grid: int = 4096) -> dict[str, float]:
    """Expected value of every numeric hyperparameter of `space` under its prior.

    The prior is uniform in the unit cube, so a midpoint grid of `grid` unit values per
    parameter gives E[value] (integer rounding and log scales included).
    """
    u = (jnp.arange(grid, dtype=jnp.float32) + 0.5) / grid
    unit = jnp.broadcast_to(u[:, None], (grid, space.dim))
    values = space.from_unit(unit)
    return {name: float(jnp.mean(v.astype(jnp.float32))) for name, v in values.items()}


def padding_share(
    forward_padded: float,
    forward_needed: float,
    particles: int,
    maxima: Mapping[str, int],
    hparams: Mapping[str, float],
    candidate_chunk: int | None = None,
) -> dict[str, float]:
    """Share of planner FLOPs spent on padding for ONE agent at `hparams`.

    Args:
      forward_padded: forward FLOPs per row of the padded network (what runs).
      forward_needed: forward FLOPs per row at the agent's actual width/depth.
      particles: particles per candidate.
      maxima: static 'iterations', 'population', 'horizon' of the compiled program.
      hparams: the agent's 'iterations', 'population', 'horizon' (may be means: floats) and
        optionally 'executed_population' (for means: E[candidates run]; else the population
        rounded up to whole chunks).
      candidate_chunk: the planner's chunk (None: all `max_population` candidates at once).

    Returns:
      needed FLOPs; executed FLOPs alone (the loops stop at the agent's own iterations,
      chunks and horizon; the last chunk and width/depth are padded) and at the maxima (the
      loops run to the maxima, as when any vmapped member sits there); the padding share of
      each.
    """
    i, p, h = (float(hparams[k]) for k in ("iterations", "population", "horizon"))
    needed = i * p * h * particles * forward_needed
    chunk = maxima["population"] if candidate_chunk is None else candidate_chunk
    candidates = hparams.get("executed_population")
    if candidates is None:
        candidates = executed_candidates(np.ceil(p), maxima["population"], chunk)
    candidates = float(candidates)
    alone = i * candidates * h * particles * forward_padded
    top = float(executed_candidates(maxima["population"], maxima["population"], chunk))
    full = maxima["iterations"] * top * maxima["horizon"] * particles
    full *= forward_padded
    return dict(
        iterations=i,
        population=p,
        horizon=h,
        needed_flops=needed,
        executed_flops=alone,
        executed_flops_at_maxima=full,
        padding_share=1.0 - needed / alone,
        padding_share_at_maxima=1.0 - needed / full,
    )


def population_padding_share(
    space: Any,
    forward_padded: float,
    forward_needed: float,
    particles: int,
    maxima: Mapping[str, int],
    members: int,
    key: jax.Array,
    draws: int = 256,
    member_batch: int | None = None,
    candidate_chunk: int | None = None,
    flat: bool = True,
) -> dict[str, float]:
    """Padding share of a population of `members` agents drawn from the prior.

    Monte Carlo over `draws` populations, modelling what `population.make_population` runs:
    needed = sum of each agent's i * p * h; executed = per group of vmapped members (all of
    them, or `member_batch` at a time as `lax.map` groups them, the last group holding the
    remainder) what `executed_planner_flops` counts for the group: with c = ceil(p / chunk)
    x chunk, group size x max(i x c x h) for the `flat` loop of PETS, group size x max(i) x
    max(c) x max(h) for nested loops. With 1 < member_batch < members the members are first
    sorted by i x c x h (the agent's `member_work`), as `make_population` does.
    """
    unit = jax.random.uniform(key, (draws, members, space.dim), jnp.float32)
    values = {k: np.asarray(v, np.float64) for k, v in space.from_unit(unit).items()}
    i, p, h = values["num_cem_iters"], values["cem_popsize"], values["plan_hor"]
    needed = np.sum(i * p * h, axis=1) * particles * forward_needed
    chunk = maxima["population"] if candidate_chunk is None else candidate_chunk
    c = executed_candidates(p, maxima["population"], chunk)
    group = members if member_batch is None else member_batch
    if 1 < group < members:
        order = np.argsort(i * c * h, axis=1, kind="stable")
        i, c, h = (np.take_along_axis(x, order, axis=1) for x in (i, c, h))
    executed = np.zeros(draws)
    for start in range(0, members, group):  # host-side accounting, not a hot path
        gi, gc, gh = (x[:, start : start + group] for x in (i, c, h))
        if flat:
            rows = np.max(gi * gc * gh, axis=1)
        else:
            rows = np.max(gi, axis=1) * np.max(gc, axis=1) * np.max(gh, axis=1)
        executed += gi.shape[1] * rows
    executed *= particles * forward_padded
    return dict(
        members=members,
        member_batch=member_batch,
        candidate_chunk=candidate_chunk,
        flat=flat,
        groups=-(-members // group),
        draws=draws,
        needed_flops=float(np.mean(needed)),
        executed_flops=float(np.mean(executed)),
        padding_share=float(1.0 - np.mean(needed) / np.mean(executed)),
    )


def scaling_efficiency(sizes: list[int], throughputs: list[float]) -> list[float]:
    """vmap efficiency: throughput(N) / (N x throughput per member at the smallest N)."""
    if len(sizes) != len(throughputs) or not sizes:
        raise ValueError(f"need equal, non-empty lists; got {len(sizes)} and {len(throughputs)}")
    base = int(np.argmin(sizes))
    per_member = throughputs[base] / sizes[base]
    return [float(t / (n * per_member)) for n, t in zip(sizes, throughputs, strict=True)]


def paper_projection(
    planner_flops_per_second: float,
    train_samples_per_second: float,
    env_steps_per_second: float,
    paper_forward_flops: float,
    measured_forward_flops: float,
    *,
    experiment: Mapping[str, int],
    paper_ensemble_size: int = 5,
    measured_ensemble_size: int = 5,
) -> dict[str, float]:
    """Wall time of the study's PBT experiment on the measured device, from measured rates.

    Planning: every trial but each member's first (random) plans every step with
    iterations x population x particles x horizon transitions of `paper_forward_flops` each,
    at the measured planner FLOP/s (for a measurement at the paper's model this is exactly
    transitions / measured transitions per second). Training after trial t runs epochs x rows
    samples on t x steps rows; a sample costs ~3 forward passes (forward + backward) on every
    member, so measured samples/s are rescaled by the FLOPs per sample when the measured model
    is smaller. Physics runs at the measured env steps/s.
    """
    x = experiment
    members, trials, steps = x["members"], x["trials"], x["steps"]
    per_step = x["iterations"] * x["population"] * x["particles"] * x["horizon"]
    transitions = float(members) * (trials - 1) * steps * per_step
    planner_s = transitions * paper_forward_flops / planner_flops_per_second
    samples = float(members) * x["epochs"] * steps * trials * (trials + 1) / 2
    sample_ratio = (paper_forward_flops * paper_ensemble_size) / (
        measured_forward_flops * measured_ensemble_size
    )
    train_s = samples * sample_ratio / train_samples_per_second
    env_s = float(members) * trials * steps / env_steps_per_second
    total = planner_s + train_s + env_s
    return dict(
        **{f"experiment_{k}": v for k, v in x.items()},
        planner_transitions=transitions,
        planner_flops=transitions * paper_forward_flops,
        train_samples=samples,
        env_steps=float(members) * trials * steps,
        planner_seconds=planner_s,
        train_seconds=train_s,
        env_seconds=env_s,
        total_seconds=total,
        total_days=total / 86400.0,
    )
