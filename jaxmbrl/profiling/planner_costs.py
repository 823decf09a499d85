"""Where a PETS planning step's time goes: the planner beside variants without one cost each.

PETS (Chua et al., NeurIPS 2018) plans with CEM over trajectory-sampling rollouts of a
probabilistic ensemble; its FLOPs are the ensemble's forward passes. Against the float32
matmul rate of the same device (the roofline), a planning step loses time to everything
that is not a large matrix product: the activation, the sampling noise, CEM's bookkeeping.
`ablate` times, interleaved with the matmul in one process:
  * the planner as configured;
  * without trajectory-sampling noise ('expectation' propagation);
  * with ReLU in place of the configured activation (XLA folds ReLU into the dot);
  * both of those;
  * the ensemble's forward pass alone at the planner's batch, the planner's ceiling.
The variants change the algorithm; they exist to measure, not to plan with.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import envs
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets
from jaxmbrl.models import ensemble as ensemble_lib
from jaxmbrl.options import check_options, option
from jaxmbrl.profiling import flops, timing


@dataclasses.dataclass(frozen=True)
class PlannerCostsConfig:
    """What `benchmarks/planner_costs.py` measures (its flags)."""

    env: str = option("half_cheetah", "Environment.", choices=envs.ALL_ENVS)
    preset: str = option("paper", "Model/planner sizes.", choices=presets.PRESETS)
    min_seconds: float = option(
        2.0, "Timing budget per variant: calls repeat (at least 3), the best is kept.", low=0.0
    )
    seed: int = option(0, "Random seed.")

    def validate(self) -> None:
        check_options(self)


VARIANTS = {
    "planner": {},
    "no TS noise": {"propagation": "expectation"},
    "ReLU model": {"activation": "relu"},
    "ReLU, no TS noise": {"propagation": "expectation", "activation": "relu"},
}


def model_forward_program(
    agent: pets_lib.PETS, hparams: pets_lib.PETSHParams, key: jax.Array
) -> tuple[Any, tuple, dict[str, Any]]:
    """(compiled fn, args, info) of the elites' forward pass alone at the planner's batch.

    `horizon` chained `predict` calls on max_population x particles rows, what one CEM
    iteration evaluates, without noise, rewards or CEM. info: rows per elite, steps, flops,
    compile seconds.
    """
    cfg = agent.config
    rows = cfg.max_population * cfg.num_particles // cfg.num_elites
    steps = int(np.max(np.asarray(hparams.planner.horizon)))
    state_key, x_key = jax.random.split(key)
    del key
    model = jax.jit(agent.ensemble.init)(state_key, hparams.model)
    size = agent.ensemble.config.input_size
    inputs = jax.random.normal(x_key, (cfg.num_elites, rows, size), jnp.float32)

    def forward(model, inputs):
        def step(_, x):
            mean, _ = agent.ensemble.predict(model, x, std=True)
            return x + 1e-3 * mean[..., :1]  # chains the steps at negligible cost

        return jax.lax.fori_loop(0, steps, step, inputs)

    compiled, compile_s = timing.compile_timed(forward, model, inputs)
    fwd = ensemble_lib.forward_flops(agent.ensemble.config, hparams.model)
    flops = float(steps * cfg.num_elites * rows * fwd)
    info = dict(rows=rows, steps=steps, flops=flops, compile_seconds=compile_s)
    return compiled, (model, inputs), info


def measure_model_forward(
    agent: pets_lib.PETS, hparams: pets_lib.PETSHParams, key: jax.Array, min_seconds: float
) -> dict:
    """The forward pass alone timed against the matmul: the planner's ceiling on the device.

    The planner cannot beat the FLOP/s of its own model; this separates "the model is slow on
    this device" from "the planner adds overhead".
    """
    compiled, args, info = model_forward_program(agent, hparams, key)
    _, timed = timing.time_against_matmul(
        compiled, *args, flops=info["flops"], min_seconds=min_seconds
    )
    return dict(**info, **timed)


def first_plan_fn(agent: pets_lib.PETS):
    """plan(key, model_state, obs, hparams) -> plan: one planning step from CEM's initial mean."""

    def plan(key, model_state, obs, hparams):
        mean0 = agent.cem.initial_mean(hparams.planner)
        return agent.plan(key, model_state, obs, mean0, hparams)[0]

    return plan


def planning_step_program(
    agent: pets_lib.PETS, hparams: pets_lib.PETSHParams, key: jax.Array
) -> tuple[Any, tuple, float]:
    """(compiled fn, args, useful FLOPs) of one planning step of a freshly initialised agent."""
    init_key, obs_key, plan_key = jax.random.split(key, 3)
    del key
    state = jax.jit(agent.init)(init_key, hparams)
    obs = agent.env.reset(obs_key).obs

    args = (plan_key, state.model, obs, hparams)
    compiled, _ = timing.compile_timed(
        first_plan_fn(agent), *args, compiler_options=agent.env.compiler_options
    )
    p = hparams.planner
    work = flops.planner_work(
        ensemble_lib.forward_flops(agent.ensemble.config, hparams.model),
        p.iterations,
        p.population,
        p.horizon,
        agent.config.num_particles,
    )
    return compiled, args, work["flops"]


def ablate(env_name: str, preset: str, min_seconds: float = 2.0, seed: int = 0) -> dict:
    """Times one planning step of `preset` on `env_name` and its variants (module docstring).

    Returns:
      dict with 'env', 'preset', 'pets_config', and 'timings': name -> seconds, FLOP/s,
      matmul FLOP/s and roofline ratios (best of interleaved calls), the planner first and
      the forward pass alone last.
    """
    env = envs.load(env_name)
    base = presets.pets_config(env, preset, 1, trial_length=1)
    key = jax.random.PRNGKey(seed)
    programs, agents = {}, {}
    for name, overrides in VARIANTS.items():
        agents[name] = pets_lib.make_pets(env, dataclasses.replace(base, **overrides))
        hparams = presets.study_hparams(agents[name])
        programs[name] = planning_step_program(agents[name], hparams, key)
    planner = agents["planner"]
    compiled, args, info = model_forward_program(planner, presets.study_hparams(planner), key)
    programs["model forward alone"] = (compiled, args, info["flops"])
    _, timings = timing.compare_against_matmul(programs, min_seconds=min_seconds)
    return dict(env=env_name, preset=preset, pets_config=dataclasses.asdict(base), timings=timings)
