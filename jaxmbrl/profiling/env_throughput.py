"""Environment throughput: MJX (jit + vmap + lax.scan) beside MuJoCo C on the same model.

For the MJX environments of `jaxmbrl.envs` (the PETS tasks of Zhang et al., AISTATS 2021):
for each batch size, the seconds to lower + compile the jitted, vmapped, scanned step and
its env steps per second (uniform random actions, best of timed calls after a warm-up), and
MuJoCo C stepping the same MjModel (same solver options) with `mujoco.rollout.rollout`
(1 thread and all cores) from the same initial states. Batches above 256 are chunked
(`envs.BatchedEnv`, a guard against a batched-LAPACK hang on CPU).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import envs
from jaxmbrl.envs._mjx import mujoco
from jaxmbrl.options import check_options, option
from jaxmbrl.profiling import timing

try:
    from mujoco import rollout as mj_rollout
except ImportError:  # older MuJoCo: fall back to an mj_step loop
    mj_rollout = None


@dataclasses.dataclass(frozen=True)
class EnvThroughputConfig:
    """What `benchmarks/env_throughput.py` measures (its flags)."""

    env: str = option("half_cheetah", "Environment.", choices=envs.ALL_ENVS)
    batch_sizes: tuple[int, ...] = option((1, 16, 128), "Batch sizes to measure.", low=1)
    steps: int = option(200, "Env steps per rollout (per batch member).", low=1)
    seed: int = option(0, "PRNG seed.")
    env_compiler_options: bool = option(
        True, "Compile with the env's XLA compiler_options (see Pusher)."
    )
    overrides: tuple[str, ...] = option(
        (), "Env config overrides, e.g. iterations=100,ls_iterations=50,solver=cg."
    )
    min_seconds: float = option(0.5, "Timing budget per measurement (best call kept).", low=0.0)

    def validate(self) -> None:
        check_options(self)
        parse_overrides(self)


def parse_overrides(config: EnvThroughputConfig) -> dict[str, Any]:
    """`config.overrides` ('name=value' strings) as typed env config fields (ValueError)."""
    defaults = envs.config_for(config.env)
    overrides = {}
    for item in config.overrides:
        name, _, value = item.partition("=")
        if not hasattr(defaults, name) or name == "episode_length":
            raise ValueError(
                f"overrides: {name!r} is not a {config.env} config field (or is fixed)"
            )
        try:
            overrides[name] = type(getattr(defaults, name))(value)
        except ValueError:
            raise ValueError(f"overrides: {item!r} has a bad value") from None
    return overrides


def make_rollout(env, batch: int, steps: int) -> Callable:
    """Scan over steps of the batched env.step with uniform random actions (to jit)."""
    batched = envs.BatchedEnv(env)
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)

    def rollout(states, key):
        def body(carry, _):
            states, key = carry
            key, key_action = jax.random.split(key)
            actions = jax.random.uniform(key_action, (batch, env.action_size)) * (high - low) + low
            states = batched.step(states, actions)
            return (states, key), jnp.sum(states.reward)

        (states, _), rewards = jax.lax.scan(body, (states, key), None, length=steps)
        return states, rewards

    return rollout


def mjx_throughput(env, batch: int, config: EnvThroughputConfig) -> dict[str, Any]:
    """Compile seconds, env steps/s, diverged members and the batch's initial [qpos, qvel]."""
    keys = jax.random.split(jax.random.key(config.seed), batch)
    options = env.compiler_options if config.env_compiler_options else {}
    states = jax.jit(envs.BatchedEnv(env).reset, compiler_options=options)(keys)
    key = jax.random.key(config.seed + 1)
    rollout, compile_s = timing.compile_timed(
        make_rollout(env, batch, config.steps), states, key, compiler_options=options
    )
    jax.block_until_ready(rollout(states, key))  # warm-up
    (final, _), best = timing.time_calls(rollout, states, key, min_seconds=config.min_seconds)
    qpos_qvel = np.concatenate([np.asarray(states.data.qpos), np.asarray(states.data.qvel)], -1)
    return dict(
        compile_s=compile_s,
        mjx_steps_per_s=batch * config.steps / best.best,
        diverged=int(np.sum(np.asarray(final.metrics["diverged"]))),
        qpos_qvel=qpos_qvel,
    )


def c_throughput(env, qpos_qvel: np.ndarray, config: EnvThroughputConfig, threads: int) -> float:
    """Env steps/s of MuJoCo C on the same model and initial states (frame_skip substeps)."""
    model, batch, skip = env.mj_model, qpos_qvel.shape[0], env.config.frame_skip
    steps = config.steps
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    initial = np.zeros((batch, mujoco.mj_stateSize(model, spec)))
    for i, row in enumerate(qpos_qvel.astype(np.float64)):
        mujoco.mj_resetData(model, data)
        data.qpos[:], data.qvel[:] = row[: model.nq], row[model.nq :]
        mujoco.mj_getState(model, data, initial[i], spec)
    rng = np.random.default_rng(config.seed)
    actions = rng.uniform(env.action_low, env.action_high, (batch, steps, model.nu))
    control = np.repeat(actions, skip, axis=1)
    datas = [mujoco.MjData(model) for _ in range(threads)]

    def run_once():
        if mj_rollout is not None:
            mj_rollout.rollout(model, datas, initial, control)
            return
        for i in range(batch):  # host fallback: this is the C reference, not our hot path
            mujoco.mj_setState(model, data, initial[i], spec)
            for t in range(steps * skip):
                data.ctrl[:] = control[i, t]
                mujoco.mj_step(model, data)

    # Repeat short runs until min_seconds have passed so that tiny batches time reliably.
    runs, start = 0, time.perf_counter()
    while runs == 0 or time.perf_counter() - start < config.min_seconds:
        run_once()
        runs += 1
    return runs * batch * steps / (time.perf_counter() - start)


def run(config: EnvThroughputConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measures every batch size of `config`; returns header, env config and one row each."""
    config.validate()
    # Physics throughput: no time limit inside the measured rollout.
    env = envs.load(config.env, episode_length=10**9, **parse_overrides(config))
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores}) if mj_rollout is not None else [1]
    c = env.config
    header = (
        f"env={env.name} steps={config.steps} device={jax.devices()[0].device_kind} "
        f"cores={cores} solver={c.solver} iterations={c.iterations} "
        f"ls_iterations={c.ls_iterations} frame_skip={c.frame_skip} "
        f"mujoco={mujoco.__version__} jax={jax.__version__} "
        f"compiler_options={env.compiler_options if config.env_compiler_options else {}}"
    )
    log(header)
    rows = []
    for batch in config.batch_sizes:
        log(f"MJX batch {batch}: compiling and running {config.steps} steps")
        mjx = mjx_throughput(env, batch, config)
        row = dict(batch=batch, compile_s=mjx["compile_s"], mjx_steps_per_s=mjx["mjx_steps_per_s"])
        for threads in thread_counts:
            log(f"MuJoCo C batch {batch}, {threads} thread(s)")
            row[f"c_{threads}thr_steps_per_s"] = c_throughput(
                env, mjx["qpos_qvel"], config, threads
            )
        row["diverged"] = mjx["diverged"]
        rows.append(row)
    return dict(
        header=header,
        config=dataclasses.asdict(config),
        env_config=dataclasses.asdict(c),
        rows=rows,
    )


def table(result: dict[str, Any]) -> str:
    """The result as a fixed-width text table."""
    columns = list(result["rows"][0])
    lines = [result["header"], " ".join(f"{name:>18}" for name in columns)]
    for row in result["rows"]:
        cells = [
            f"{row[n]:>18d}" if isinstance(row[n], int) else f"{row[n]:>18.1f}" for n in columns
        ]
        lines.append(" ".join(cells))
    return "\n".join(lines)
