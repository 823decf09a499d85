"""Process set-up shared by the binaries and the tests: XLA:CPU vector width, threefry's CPU
lowering, compile cache.

Not a hot path: these run once, before JAX initialises its backend, so that the binaries of
this suite (Zhang et al., AISTATS 2021, on one accelerator) and its tests compile the same
programs and share JAX's persistent compilation cache.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any

import jax

WIDE_VECTOR_FLAG = "--xla_cpu_prefer_vector_width=512"


def _has_avx512(cpuinfo: str = "/proc/cpuinfo") -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split(":", 1)[-1].split()
    except OSError:
        pass
    return False


def _backend_initialized() -> bool:
    try:
        from jax._src import xla_bridge  # private API, hence guarded

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return False


def prefer_wide_vectors(cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """Asks XLA:CPU for 512-bit vectors on AVX-512 x86 hosts; returns the flag added, or None.

    XLA:CPU prefers 256-bit vectors by default; on AVX-512 hosts 512-bit ones make the
    planner's elementwise work (SiLU) about 2x faster (planner roofline ratio +0.04). XLA
    reads XLA_FLAGS when JAX initialises its backend, so call this first thing in a
    binary. A --xla_cpu_prefer_vector_width already in XLA_FLAGS (the user's) is kept;
    nothing changes on other CPUs or once a backend exists.
    """
    flags_now = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_prefer_vector_width" in flags_now or not _has_avx512(cpuinfo):
        return None
    if _backend_initialized():
        return None  # too late: XLA has read its flags
    os.environ["XLA_FLAGS"] = f"{flags_now} {WIDE_VECTOR_FLAG}".strip()
    return WIDE_VECTOR_FLAG


def unroll_threefry() -> bool:
    """Lowers `jax.random`'s threefry hash unrolled on the CPU too; returns whether it could.

    JAX lowers threefry2x32 on the CPU as a rolled 5-trip while loop (smaller programs), on
    accelerators unrolled. PETS draws small batches of random numbers on every planning
    step, and on the CPU each rolled loop's per-trip fixed cost (a thunk per op, buffer
    copies, thread hand-offs) dominated the small presets: unrolled, the same bits come
    from one fused loop (tiny preset: 1.21x per planning step, `benchmarks.throughput
    --compare`; BUILD_NOTES, issue 20). The rule is JAX's own accelerator lowering, reached through
    private API, hence guarded: where it moved, nothing changes and False is returned.
    """
    try:
        from jax._src.random import threefry2x32 as threefry  # private API, hence guarded
        from jax.interpreters import mlir

        rule = threefry._threefry2x32_lowering_rule
        mlir.register_lowering(threefry.threefry2x32_p, rule, platform="cpu", inline=False)
    except (ImportError, AttributeError):
        return False
    return True


def enable_compilation_cache() -> str:
    """Turns on JAX's persistent compilation cache so a repeated run skips compilation."""
    cache_dir = os.environ.get("JAXMBRL_CACHE_DIR", os.path.expanduser("~/.cache/jaxmbrl/jax"))
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache_dir


def to_builtin(value: Any) -> Any:
    """Converts arrays and numpy scalars in a (nested) value to JSON-able Python objects."""
    if isinstance(value, dict):
        return {k: to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def write_json(path: str, obj: Any) -> None:
    """Writes `obj` as JSON atomically (temp file + rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(to_builtin(obj), f, indent=2, allow_nan=True)
        f.write("\n")
    os.replace(tmp, path)
