"""One side of `profiling.compare`: a PETS planning step of ONE code version, timed on request.

PETS (Chua et al., NeurIPS 2018) as tuned by Zhang et al. (AISTATS 2021). This file is not
imported by the library: `compare` runs its source with `python -c` in the root of the
version's source tree, so `import jaxmbrl` finds THAT tree's package (this file's own
version never runs there). It therefore uses only API that every compared version has:
`envs.load`, `presets.pets_config` / `study_hparams`, `pets.make_pets` (init, plan,
cem.initial_mean), and the runtime's `prefer_wide_vectors` (wherever each version keeps it)
and `unroll_threefry` (where the version has it).

Protocol on stdin/stdout, one JSON object per line, each prefixed with `COMPARE ` (the
version's own prints go to stderr or are ignored):
  argv: env preset steps population seed cache_dir
  -> {"ready": ..., "transitions": per call, "compile_seconds", "jaxmbrl": its path}
  stdin "time" -> {"seconds": wall, "cpu_seconds": process CPU, "checksum": of the plan}
  stdin "quit" (or EOF) -> exits.
"""

import importlib
import json
import sys
import time


def _say(**fields):
    sys.stdout.write("COMPARE " + json.dumps(fields) + "\n")
    sys.stdout.flush()


def _set_up(name):
    # Where each version keeps it (runtime now; the binaries' _cli before): before JAX starts.
    for module in ("jaxmbrl.runtime", "benchmarks._cli"):
        try:
            fn = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if fn is not None:
            fn()
            return


def main(argv):
    env_name, preset, steps, population, seed, cache_dir = argv
    steps, population, seed = int(steps), int(population), int(seed)
    _set_up("prefer_wide_vectors")
    _set_up("unroll_threefry")  # a version without it keeps JAX's rolled CPU lowering
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxmbrl
    from jaxmbrl import envs
    from jaxmbrl.agents import pets as pets_lib
    from jaxmbrl.agents import presets

    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    env = envs.load(env_name)
    agent = pets_lib.make_pets(env, presets.pets_config(env, preset, 1, trial_length=steps))
    hparams = presets.study_hparams(agent)
    init_key, obs_key, plan_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    state = jax.jit(agent.init)(init_key, hparams)
    obs = env.reset(obs_key).obs
    keys = jax.random.split(plan_key, population)

    def plan_one(key):
        mean0 = agent.cem.initial_mean(hparams.planner)
        return agent.plan(key, state.model, obs, mean0, hparams)[0]

    def plan_all(keys):  # members one at a time, the CPU default of the population
        return jax.lax.map(plan_one, keys)

    compiler_options = getattr(env, "compiler_options", None) or None
    start = time.perf_counter()
    compiled = jax.jit(plan_all, compiler_options=compiler_options).lower(keys).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(keys))  # first call: one-off allocations
    p = hparams.planner
    transitions = (
        population
        * float(np.asarray(p.iterations) * np.asarray(p.population) * np.asarray(p.horizon))
        * agent.config.num_particles
    )
    _say(
        ready=True,
        transitions=transitions,
        compile_seconds=compile_s,
        jaxmbrl=jaxmbrl.__file__,
    )
    for line in sys.stdin:
        if line.strip() != "time":
            break
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = jax.block_until_ready(compiled(keys))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        _say(seconds=seconds, cpu_seconds=cpu, checksum=float(jnp.sum(jnp.abs(plan))))


if __name__ == "__main__":
    main(sys.argv[1:])
