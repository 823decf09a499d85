"""Timing of compiled programs against the device's matmul roofline, and their memory.

Generic helpers (they import no agent) for the throughput profiler of this suite (PETS,
Chua et al. 2018, tuned as in Zhang et al., AISTATS 2021): AOT compile timing, best-of call
timing with CPU seconds, the float32 matmul rate of the same device measured interleaved
with a program (the roofline a planner is compared with), and peak/program memory.
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
