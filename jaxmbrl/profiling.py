"""Throughput accounting for a vmapped PETS population: FLOPs, a matmul roofline, timing, memory.

PETS (Chua et al., NeurIPS 2018) as tuned by Zhang et al., "On the Importance of Hyperparameter
Optimization for Model-based Reinforcement Learning" (AISTATS 2021). The planner's cost is the
ensemble forward pass: iterations x CEM population x particles x horizon rows per action, each
`forward_flops` FLOPs. These helpers count those FLOPs (needed at the actual hyperparameters vs
executed by the padded program), time compiled calls, measure the float32 matmul rate the same
device reaches (the roofline the planner is compared with) and project the study's experiment.
Used by `jaxmbrl.throughput` (the population profiler behind `benchmarks/throughput.py`).
"""

from __future__ import annotations

import functools
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.agents import presets

# The study's PBT experiment (hpo_for_mbrl.md): 40 members x 300 trials of half_cheetah x 1000
# steps at the PETS defaults of the 'paper' preset.
PAPER_EXPERIMENT = dict(
    members=40,
    trials=presets.STUDY_TRIALS["half_cheetah"],
    steps=1000,
    iterations=presets.PAPER_SIZES["max_iterations"],
    population=presets.PAPER_SIZES["max_population"],
    particles=presets.PAPER_SIZES["num_particles"],
    horizon=presets.STUDY_HORIZON["half_cheetah"],
    epochs=presets.PAPER_SIZES["max_epochs"],
)


class Timing(NamedTuple):
    best: float  # wall seconds of the fastest call
    mean: float  # mean wall seconds
    calls: int
    cpu: float  # process CPU seconds (all threads) of the fastest call


def time_calls(
    fn: Callable, *args: Any, min_seconds: float = 1.0, max_calls: int = 5
) -> tuple[Any, Timing]:
    """Calls `fn(*args)` (blocking on the result) until `min_seconds` or `max_calls` are spent.

    A slow call runs once; fast calls repeat and the best is kept (the first call of a freshly
    compiled program pays one-off allocations). CPU seconds (time.process_time, all threads)
    are kept too: on a shared host, FLOPs per CPU-second are robust to other processes taking
    cores, while wall seconds are not. Returns (last output, Timing).
    """
    times, cpu_times, out = [], [], None
    while not times or (sum(times) < min_seconds and len(times) < max_calls):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    best = int(np.argmin(times))
    return out, Timing(times[best], float(np.mean(times)), len(times), cpu_times[best])


def compile_timed(fn: Callable, *args: Any, compiler_options: dict | None = None) -> tuple:
    """AOT-compiles `jax.jit(fn)` for `args`; returns (compiled, seconds to lower + compile)."""
    start = time.perf_counter()
    compiled = jax.jit(fn, compiler_options=compiler_options or None).lower(*args).compile()
    return compiled, time.perf_counter() - start


@functools.lru_cache(maxsize=4)
def _matmul_program(size: int) -> tuple[Any, jax.Array, jax.Array]:
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    dot = jax.jit(jnp.dot).lower(a, b).compile()
    jax.block_until_ready(dot(a, b))  # warm-up
    return dot, a, b


def matmul_roofline(size: int = 2048, calls: int = 5) -> dict[str, float]:
    """float32 FLOP/s of a jitted `jnp.dot` of two [size, size] matrices (best of `calls`)."""
    if size < 1 or calls < 1:
        raise ValueError(f"size={size} and calls={calls} must be >= 1")
    dot, a, b = _matmul_program(size)
    _, timing = time_calls(dot, a, b, min_seconds=0.0, max_calls=calls)
    flops = 2.0 * size**3
    return dict(
        size=size,
        flops=flops,
        seconds=timing.best,
        cpu_seconds=timing.cpu,
        flops_per_second=flops / timing.best,
        flops_per_cpu_second=flops / max(timing.cpu, 1e-9),
    )


def compare_against_matmul(
    programs: Mapping[str, tuple[Callable, Sequence[Any], float]],
    *,
    min_seconds: float = 1.0,
    size: int = 2048,
    min_rounds: int = 3,
    max_rounds: int = 8,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Times programs interleaved with the matmul roofline: {name: (fn, args, flops)}.

    On a shared host every rate moves with the load, and one bracketing measurement is not
    enough: each round calls every program once, each followed by one matmul, for at least
    `min_rounds` rounds and until every program has run `min_seconds` (at most `max_rounds`).
    A program's ratio is its best call over the best matmul of the whole comparison: what
    each reached in this run, so a momentarily slow matmul cannot flatter it.

    Returns:
      (last outputs, timings) keyed by name; a timing holds seconds and CPU seconds of the
      best call, calls, FLOP/s, the matmul FLOP/s, and the roofline ratio in wall seconds
      and in CPU seconds.
    """
    dot, a, b = _matmul_program(size)
    outputs: dict[str, Any] = {}
    calls: dict[str, list[tuple[float, float]]] = {name: [] for name in programs}
    matmuls: list[tuple[float, float]] = []

    def done() -> bool:
        rounds = len(matmuls) // max(len(programs), 1)
        spent = min(sum(c[0] for c in times) for times in calls.values())
        return rounds >= min_rounds and (spent >= min_seconds or rounds >= max_rounds)

    while not done():
        for name, (fn, args, _) in programs.items():
            outputs[name], timing = time_calls(fn, *args, min_seconds=0.0, max_calls=1)
            calls[name].append((timing.best, timing.cpu))
            _, timing = time_calls(dot, a, b, min_seconds=0.0, max_calls=1)
            matmuls.append((timing.best, timing.cpu))
    matmul_seconds, matmul_cpu = min(matmuls)
    matmul_rate = 2.0 * size**3 / matmul_seconds
    matmul_cpu_rate = 2.0 * size**3 / max(matmul_cpu, 1e-9)
    timings = {}
    for name, (_, _, flops) in programs.items():
        seconds, cpu_seconds = min(calls[name])
        timings[name] = dict(
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            calls=len(calls[name]),
            flops_per_second=flops / seconds,
            matmul_flops_per_second=matmul_rate,
            roofline_ratio=flops / seconds / matmul_rate,
            roofline_ratio_cpu=flops / max(cpu_seconds, 1e-9) / matmul_cpu_rate,
        )
    return outputs, timings


def time_against_matmul(
    fn: Callable, *args: Any, flops: float, min_seconds: float = 1.0, size: int = 2048
) -> tuple[Any, dict[str, float]]:
    """`compare_against_matmul` for one program: (last output, timing)."""
    outputs, timings = compare_against_matmul(
        {"fn": (fn, args, flops)}, min_seconds=min_seconds, size=size
    )
    return outputs["fn"], timings["fn"]


def peak_memory(device: jax.Device | None = None) -> dict[str, Any]:
    """Peak memory: the device's `memory_stats()` where it has them, else the host's peak RSS.

    The host figure (resource.getrusage ru_maxrss) is the whole process's peak so far.
    """
    device = device or jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without stats raise or return None
        stats = None
    if stats and "peak_bytes_in_use" in stats:
        return dict(bytes=int(stats["peak_bytes_in_use"]), source="device memory_stats")
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return dict(bytes=int(kib) * 1024, source="host peak RSS (process so far)")


def program_memory(compiled: Any) -> dict[str, int] | None:
    """Argument, output and temporary bytes of an AOT-compiled program (None if unavailable)."""
    try:
        analysis = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if analysis is None:
        return None
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    out = {f.replace("_size_in_bytes", "_bytes"): int(getattr(analysis, f, 0)) for f in fields}
    out["total_bytes"] = sum(out.values())
    return out


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


def executed_planner_flops(
    forward_flops_padded: float,
    iterations: Any,
    horizon: Any,
    max_population: int,
    particles: int,
) -> float:
    """FLOPs the padded, vmapped planner executes for a population of agents.

    Every agent evaluates all `max_population` candidates (padded ones too) through the padded
    network; the iteration and horizon loops have traced trip counts, which under vmap run to
    the largest value among the agents.
    """
    iterations, horizon = np.asarray(iterations), np.asarray(horizon)
    agents = max(iterations.size, horizon.size)
    rows = float(np.max(iterations)) * max_population * float(np.max(horizon)) * particles
    return agents * rows * float(forward_flops_padded)


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
) -> dict[str, float]:
    """Share of planner FLOPs spent on padding for ONE agent at `hparams`.

    Args:
      forward_padded: forward FLOPs per row of the padded network (what runs).
      forward_needed: forward FLOPs per row at the agent's actual width/depth.
      particles: particles per candidate.
      maxima: static 'iterations', 'population', 'horizon' of the compiled program.
      hparams: the agent's 'iterations', 'population', 'horizon' (may be means: floats).

    Returns:
      needed FLOPs; executed FLOPs alone (the loops stop at the agent's own iterations and
      horizon, only candidates and width/depth are padded) and at the maxima (the loops run to
      the maxima, as when any vmapped member sits there); the padding share of each.
    """
    i, p, h = (float(hparams[k]) for k in ("iterations", "population", "horizon"))
    needed = i * p * h * particles * forward_needed
    alone = i * maxima["population"] * h * particles * forward_padded
    full = maxima["iterations"] * maxima["population"] * maxima["horizon"] * particles
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
) -> dict[str, float]:
    """Padding share of a population of `members` agents drawn from the prior.

    Monte Carlo over `draws` populations: needed = sum of each agent's i * p * h; executed =
    per group of vmapped members (all of them, or `member_batch` at a time as in
    `population.map_members`): group size x max(i) x max_population x max(h) of the group
    (see `executed_planner_flops`).
    """
    unit = jax.random.uniform(key, (draws, members, space.dim), jnp.float32)
    values = {k: np.asarray(v, np.float64) for k, v in space.from_unit(unit).items()}
    i, p, h = values["num_cem_iters"], values["cem_popsize"], values["plan_hor"]
    needed = np.sum(i * p * h, axis=1) * particles * forward_needed
    executed = np.zeros(draws)
    group = members if member_batch is None else member_batch
    for start in range(0, members, group):  # host-side accounting, not a hot path
        gi, gh = i[:, start : start + group], h[:, start : start + group]
        executed += gi.shape[1] * np.max(gi, axis=1) * np.max(gh, axis=1)
    executed *= maxima["population"] * particles * forward_padded
    return dict(
        members=members,
        member_batch=member_batch,
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
    paper_ensemble_size: int = 5,
    measured_ensemble_size: int = 5,
    experiment: Mapping[str, int] = PAPER_EXPERIMENT,
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
