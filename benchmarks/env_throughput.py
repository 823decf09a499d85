"""Environment throughput: MJX (jit + vmap + lax.scan) beside MuJoCo C on the same model.

For the MJX environments of jaxmbrl.envs (the PETS tasks of Zhang et al., AISTATS 2021):
for each batch size, the seconds to lower + compile the jitted, vmapped, scanned step and
its env steps per second (uniform random actions, one untimed warm-up call first), and
MuJoCo C stepping the same MjModel (same solver options) with ``mujoco.rollout.rollout``
(1 thread and all cores) from the same initial states. Batches above 256 go through
``chunked_vmap`` (see jaxmbrl/envs/wrappers.py). Progress goes to stderr (absl logging),
the table to stdout, and optionally JSON to --out.

  python -m benchmarks.env_throughput --env=half_cheetah --batch_sizes=1,16,128 --steps=100
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import envs
from jaxmbrl.envs._mjx import mujoco
from jaxmbrl.envs.wrappers import DEFAULT_MAX_CHUNK, chunked_vmap

try:
    from mujoco import rollout as mj_rollout
except ImportError:  # older MuJoCo: fall back to an mj_step loop
    mj_rollout = None

_ENV = flags.DEFINE_string("env", "half_cheetah", f"one of {', '.join(envs.ALL_ENVS)}")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "16", "128"], "batch sizes to measure")
_STEPS = flags.DEFINE_integer("steps", 200, "env steps per rollout (per batch member)")
_OUT = flags.DEFINE_string("out", None, "optional JSON output path")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed")
_ENV_OPTIONS = flags.DEFINE_bool(
    "env_compiler_options", True, "compile with the env's XLA compiler_options (see Pusher)"
)
_OVERRIDES = flags.DEFINE_list(
    "overrides", [], "env config overrides, e.g. iterations=100,ls_iterations=50,solver=cg"
)


def _parse_overrides() -> dict:
    defaults = envs.config_for(_ENV.value)
    overrides = {}
    for item in _OVERRIDES.value:
        name, _, value = item.partition("=")
        if not hasattr(defaults, name) or name == "episode_length":
            _cli.usage_error(
                f"--overrides: {name!r} is not a {_ENV.value} config field (or is fixed)"
            )
        try:
            overrides[name] = type(getattr(defaults, name))(value)
        except ValueError:
            _cli.usage_error(f"--overrides: {item!r} has a bad value")
    return overrides


def _parse_flags() -> list[int]:
    if _ENV.value not in envs.ALL_ENVS:
        _cli.usage_error(f"--env={_ENV.value!r} unknown; valid: {', '.join(envs.ALL_ENVS)}")
    try:
        sizes = [int(b) for b in _BATCH_SIZES.value]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        _cli.usage_error(f"--batch_sizes={','.join(_BATCH_SIZES.value)} must be positive integers")
    if _STEPS.value < 1:
        _cli.usage_error(f"--steps={_STEPS.value} must be >= 1")
    return sizes


def make_rollout(env, batch: int, steps: int):
    """Scan over steps of chunked-vmapped env.step with uniform random actions (to jit)."""
    step = chunked_vmap(env.step, DEFAULT_MAX_CHUNK)
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)

    def rollout(states, key):
        def body(carry, _):
            states, key = carry
            key, key_action = jax.random.split(key)
            actions = jax.random.uniform(key_action, (batch, env.action_size)) * (high - low) + low
            states = step(states, actions)
            return (states, key), jnp.sum(states.reward)

        (states, _), rewards = jax.lax.scan(body, (states, key), None, length=steps)
        return states, rewards

    return rollout


def mjx_throughput(env, batch: int, steps: int, seed: int) -> tuple[float, float, np.ndarray]:
    """Returns (compile seconds, env steps/s, initial [qpos, qvel] of the batch)."""
    keys = jax.random.split(jax.random.key(seed), batch)
    options = env.compiler_options if _ENV_OPTIONS.value else {}
    states = jax.jit(chunked_vmap(env.reset, DEFAULT_MAX_CHUNK), compiler_options=options)(keys)
    key = jax.random.key(seed + 1)
    start = time.perf_counter()
    rollout = jax.jit(make_rollout(env, batch, steps), compiler_options=options)
    compiled = rollout.lower(states, key).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(states, key))  # warm-up
    start = time.perf_counter()
    final, rewards = jax.block_until_ready(compiled(states, key))
    run_s = time.perf_counter() - start
    if not np.all(np.isfinite(np.asarray(rewards))):
        logging.warning("non-finite rewards in the MJX rollout (diverged members)")
    logging.info(
        "mjx B=%d: %d of %d members diverged", batch, int(final.metrics["diverged"].sum()), batch
    )
    qpos_qvel = np.concatenate([np.asarray(states.data.qpos), np.asarray(states.data.qvel)], -1)
    return compile_s, batch * steps / run_s, qpos_qvel


def c_throughput(env, qpos_qvel: np.ndarray, steps: int, threads: int, seed: int) -> float:
    """Env steps/s of MuJoCo C on the same model and initial states (frame_skip substeps)."""
    model, batch, skip = env.mj_model, qpos_qvel.shape[0], env.config.frame_skip
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    initial = np.zeros((batch, mujoco.mj_stateSize(model, spec)))
    for i, row in enumerate(qpos_qvel.astype(np.float64)):
        mujoco.mj_resetData(model, data)
        data.qpos[:], data.qvel[:] = row[: model.nq], row[model.nq :]
        mujoco.mj_getState(model, data, initial[i], spec)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(env.action_low, env.action_high, (batch, steps, model.nu))
    control = np.repeat(actions, skip, axis=1)
    datas = [mujoco.MjData(model) for _ in range(threads)]

    def run_once():
        if mj_rollout is not None:
            mj_rollout.rollout(model, datas, initial, control)
            return
        for i in range(batch):
            mujoco.mj_setState(model, data, initial[i], spec)
            for t in range(steps * skip):
                data.ctrl[:] = control[i, t]
                mujoco.mj_step(model, data)

    # Repeat short runs until 0.5 s have passed so that tiny batches time reliably.
    runs, start = 0, time.perf_counter()
    while runs == 0 or time.perf_counter() - start < 0.5:
        run_once()
        runs += 1
    return runs * batch * steps / (time.perf_counter() - start)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    sizes = _parse_flags()
    steps, seed = _STEPS.value, _SEED.value
    # Physics throughput: no time limit inside the measured rollout.
    try:
        env = envs.load(_ENV.value, episode_length=10**9, **_parse_overrides())
    except ValueError as e:
        _cli.usage_error(str(e))
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores}) if mj_rollout is not None else [1]
    c = env.config
    header = (
        f"env={env.name} steps={steps} device={jax.devices()[0].device_kind} cores={cores} "
        f"solver={c.solver} iterations={c.iterations} ls_iterations={c.ls_iterations} "
        f"frame_skip={c.frame_skip} mujoco={mujoco.__version__} jax={jax.__version__} "
        f"compiler_options={env.compiler_options if _ENV_OPTIONS.value else {}}"
    )
    logging.info(header)
    rows = []
    for batch in sizes:
        logging.info("MJX batch %d: compiling and running %d steps", batch, steps)
        compile_s, mjx_sps, qpos_qvel = mjx_throughput(env, batch, steps, seed)
        row = {"batch": batch, "compile_s": compile_s, "mjx_steps_per_s": mjx_sps}
        for threads in thread_counts:
            logging.info("MuJoCo C batch %d, %d thread(s)", batch, threads)
            row[f"c_{threads}thr_steps_per_s"] = c_throughput(env, qpos_qvel, steps, threads, seed)
        logging.info("%s", row)
        rows.append(row)
    columns = list(rows[0])
    print(header)
    print(" ".join(f"{name:>18}" for name in columns))
    for row in rows:
        print(
            " ".join(
                f"{row[name]:>18.1f}" if name != "batch" else f"{row[name]:>18d}"
                for name in columns
            )
        )
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(
                {"header": header, "config": dataclasses.asdict(c), "rows": rows}, f, indent=2
            )
        logging.info("wrote %s", _OUT.value)


if __name__ == "__main__":
    _cli.prefer_wide_vectors()  # before JAX initialises its backend
    app.run(main, flags_parser=_cli.parse_flags)
