"""Population throughput of PETS agents: what one device does per second, and why.

PETS (Chua et al., NeurIPS 2018) as tuned by Zhang et al., "On the Importance of
Hyperparameter Optimization for Model-based Reinforcement Learning" (AISTATS 2021).

`run(ThroughputConfig(...))` measures, for each population size N in one process: AOT
compile seconds and memory of the population step (`Population.step`: one trial + model
training for every member, one program; members mapped as `member_batch` says); env steps/s
inside that program and of the MJX step alone vmapped at batch N; model-training samples/s
(`train_model` alone on a filled replay buffer, samples = epochs x rows); planner model
transitions/s and FLOP/s of one planning step (`PETS.plan`, mapped over N) beside the
float32 matmul FLOP/s measured interleaved with it (the roofline ratio); scaling efficiency
against N x one member. The ensemble's forward pass alone at the planner's batch gives the
planner's ceiling on the device. Also the share of planner FLOPs spent on padding for the
study's planning search space, and the projected wall time of the study's PBT experiment.
Every rate is also given per CPU second (time.process_time): on a shared host wall-clock
rates move with the load, CPU-second rates much less. The first trial of a member acts at
random and is not timed (`first_trial_seconds`); under vmap its `lax.cond` runs both
branches and costs as much as a planned trial.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import envs, planner_costs, profiling, tuners
from jaxmbrl import population as population_lib
from jaxmbrl import replay as replay_lib
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets
from jaxmbrl.models import ensemble as ensemble_lib

DEFAULT_STEPS = {"tiny": 25, "paper": 2}


@dataclasses.dataclass(frozen=True)
class ThroughputConfig:
    env: str = "cartpole"
    populations: tuple[int, ...] = (1, 2, 4, 8)
    preset: str = "tiny"
    steps: int = 0  # env steps per timed trial; 0: DEFAULT_STEPS[preset]
    train_rows: int = 2000
    seed: int = 0
    profile_dir: str | None = None
    min_seconds: float = 1.0  # timing budget per measurement: fast calls repeat, best kept
    member_batch: int = 0  # members per vmap; 0: auto (population.resolve_member_batch)

    def validate(self) -> None:
        """Raises ValueError with one line naming the bad value and the valid range."""
        if self.env not in envs.ALL_ENVS:
            raise ValueError(f"unknown env {self.env!r}; valid: {', '.join(envs.ALL_ENVS)}")
        if self.preset not in presets.PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(presets.PRESETS)}")
        if not self.populations or min(self.populations) < 1:
            raise ValueError(f"population={list(self.populations)} needs sizes >= 1")
        if len(set(self.populations)) != len(self.populations):
            raise ValueError(f"population={list(self.populations)} has repeated sizes")
        if self.steps < 0:
            raise ValueError(f"steps={self.steps} must be >= 1 (or 0 for the preset's default)")
        if self.train_rows < 64:
            raise ValueError(f"train_rows={self.train_rows} must be >= 64")
        if not self.min_seconds >= 0:
            raise ValueError(f"min_seconds={self.min_seconds} must be >= 0")
        if self.member_batch < 0:
            raise ValueError(f"member_batch={self.member_batch} must be >= 0 (0: auto)")


def make_agent(config: ThroughputConfig, steps: int) -> pets_lib.PETS:
    """The PETS agent measured: `config.preset` sizes, trials of `steps` env steps."""
    env = envs.load(config.env)
    capacity = max(config.train_rows, 8 * steps)
    pets_config = presets.pets_config(
        env, config.preset, 1, trial_length=steps, replay_capacity=capacity
    )
    return pets_lib.make_pets(env, pets_config)


def _forward_flops(env, config: pets_lib.PETSConfig) -> int:
    """Forward FLOPs per row of one member of the (padded) ensemble of `config` on `env`."""
    return ensemble_lib.forward_flops(
        ensemble_lib.EnsembleConfig(
            input_size=env.obs_feature_size + env.action_size,
            output_size=env.target_size,
            max_hidden_width=config.max_hidden_width,
            max_hidden_layers=config.max_hidden_layers,
        )
    )


def _planner(agent: pets_lib.PETS, member_batch: int | None):
    """One planning step (`agent.plan` from the initial mean) mapped over agents."""
    return population_lib.map_members(planner_costs.first_plan_fn(agent), member_batch)


def _filled_replay(key, agent: pets_lib.PETS, n: int) -> replay_lib.ReplayBuffer:
    """[N] replay buffers full of synthetic transitions (content does not change the cost)."""
    env, cap = agent.env, agent.config.replay_capacity
    k_obs, k_act, k_next = jax.random.split(key, 3)
    obs = jax.random.normal(k_obs, (n, cap, env.observation_size), jnp.float32)
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)
    action = jax.random.uniform(k_act, (n, cap, env.action_size), minval=low, maxval=high)
    next_obs = obs + 0.1 * jax.random.normal(k_next, obs.shape, jnp.float32)
    zeros = jnp.zeros((n, cap), jnp.float32)
    return replay_lib.ReplayBuffer(
        obs=obs,
        action=action,
        next_obs=next_obs,
        reward=zeros,
        done=zeros,
        size=jnp.full((n,), cap, jnp.int32),
        position=jnp.zeros((n,), jnp.int32),
    )


def _env_rollout(env, steps: int):
    batched = envs.BatchedEnv(env)

    def rollout(states, actions):  # actions [steps, N, A]
        return jax.lax.scan(lambda s, a: (batched.step(s, a), None), states, actions)[0]

    return rollout


def _measure_trial(population, state, out, compile_s, env, steps, profile_dir, min_seconds):
    """Population step: trial 1 acts at random (warm-up, untimed), trial 2 plans (timed)."""
    n = out["population"]
    step, compile_s["population_step"] = profiling.compile_timed(
        population.step, state, compiler_options=env.compiler_options
    )
    out["program_memory"] = profiling.program_memory(step)
    start = time.perf_counter()
    state, _ = jax.block_until_ready(step(state))
    out["first_trial_seconds"] = time.perf_counter() - start
    (state, metrics), timing = profiling.time_calls(
        step, state, min_seconds=min_seconds, max_calls=3
    )
    out["trial_seconds"] = timing.best
    out["trial"] = dict(seconds=timing.best, cpu_seconds=timing.cpu, calls=timing.calls)
    out["env_steps_per_second"] = n * steps / timing.best
    out["trial_return_mean"] = float(np.mean(metrics["trial_return"]))
    if profile_dir:
        with jax.profiler.trace(profile_dir):
            jax.block_until_ready(step(state))
        out["profile_dir"] = profile_dir
    return state


def measure_population(
    agent: pets_lib.PETS,
    hparams: pets_lib.PETSHParams,
    n: int,
    steps: int,
    key: jax.Array,
    profile_dir: str | None = None,
    min_seconds: float = 1.0,
    member_batch: int | None = None,
) -> dict:
    """All measurements at population size `n` (see the module docstring)."""
    cfg, env = agent.config, agent.env
    batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), hparams)
    population = population_lib.make_population(
        agent, n, lambda unit: batched, member_batch=member_batch
    )
    init_key, env_key, act_key, data_key, train_key, plan_key = jax.random.split(key, 6)
    state = jax.jit(population.init)(init_key, jnp.zeros((n, 1), jnp.float32))
    out: dict[str, Any] = dict(population=n, steps=steps)
    compile_s: dict[str, float] = {}
    state = _measure_trial(population, state, out, compile_s, env, steps, profile_dir, min_seconds)

    # The MJX step alone, vmapped at batch n.
    env_steps = max(steps, 10)
    env_states = jax.jit(jax.vmap(env.reset))(jax.random.split(env_key, n))
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)
    actions = jax.random.uniform(act_key, (env_steps, n, env.action_size), minval=low, maxval=high)
    rollout, compile_s["env"] = profiling.compile_timed(
        _env_rollout(env, env_steps), env_states, actions, compiler_options=env.compiler_options
    )
    _, timing = profiling.time_calls(rollout, env_states, actions, min_seconds=min_seconds)
    env_rate = n * env_steps / timing.best
    out["env_alone"] = dict(
        batch=n,
        steps=env_steps,
        seconds=timing.best,
        cpu_seconds=timing.cpu,
        steps_per_second=env_rate,
    )
    out["physics_share_of_trial"] = (n * steps / env_rate) / out["trial_seconds"]

    # Model training alone on full replay buffers.
    replay = jax.jit(lambda k: _filled_replay(k, agent, n))(data_key)
    agents = state.members.agents._replace(replay=replay)
    train_keys = jax.random.split(train_key, n)
    train, compile_s["train"] = profiling.compile_timed(
        population_lib.map_members(agent.train_model, member_batch), train_keys, agents, batched
    )
    (_, train_metrics), timing = profiling.time_calls(
        train, train_keys, agents, batched, min_seconds=min_seconds
    )
    rows = np.asarray(agents.replay.size, np.float64)
    epochs = np.clip(np.asarray(batched.model.epochs), 0, cfg.max_epochs)
    samples = float(np.sum(epochs * rows))
    fwd_model = ensemble_lib.forward_flops(agent.ensemble.config, hparams.model)
    out["train"] = dict(
        rows=float(rows[0]),
        samples=samples,
        seconds=timing.best,
        cpu_seconds=timing.cpu,
        gradient_steps=int(np.max(train_metrics["steps"])),
        samples_per_second=samples / timing.best,
        # forward + backward ~ 3 forward passes, on every member.
        flops_per_second=3.0 * cfg.ensemble_size * fwd_model * samples / timing.best,
    )

    # One planning step (agent.plan: CEM on the trajectory cost) for every member, vmapped.
    obs = env_states.obs
    plan_keys = jax.random.split(plan_key, n)
    models = state.members.agents.model
    planner, compile_s["planner"] = profiling.compile_timed(
        _planner(agent, member_batch), plan_keys, models, obs, batched
    )
    hp = batched.planner
    work = profiling.planner_work(
        fwd_model, hp.iterations, hp.population, hp.horizon, cfg.num_particles
    )
    _, timed = profiling.time_against_matmul(
        planner, plan_keys, models, obs, batched, flops=work["flops"], min_seconds=min_seconds
    )
    executed = profiling.executed_planner_flops(
        ensemble_lib.forward_flops(agent.ensemble.config),
        hp.iterations,
        hp.horizon,
        cfg.max_population,
        cfg.num_particles,
    )
    out["planner"] = dict(**work, executed_flops=executed, **timed)
    out["planner"]["transitions_per_second"] = work["transitions"] / timed["seconds"]
    out["compile_seconds"] = compile_s
    out["compile_seconds_total"] = sum(compile_s.values())
    out["peak_memory"] = profiling.peak_memory()
    return out


def padding_report(config: ThroughputConfig, agent: pets_lib.PETS, key: jax.Array) -> dict:
    """Planner FLOPs spent on padding for the study's planning search space (paper maxima)."""
    env = agent.env
    space = tuners.get_space("planning", env=config.env)
    paper, _ = presets.config_for_space(env, "paper", 1, space, trial_length=1)
    maxima = dict(
        iterations=paper.max_iterations,
        population=paper.max_population,
        horizon=paper.max_horizon,
    )
    fwd = _forward_flops(env, paper)  # the planning space leaves the model alone
    defaults = {p.name: p.default for p in space.params}

    def case(values):
        hp = dict(
            iterations=values["num_cem_iters"],
            population=values["cem_popsize"],
            horizon=values["plan_hor"],
        )
        return profiling.padding_share(fwd, fwd, paper.num_particles, maxima, hp)

    return dict(
        space="planning",
        env=config.env,
        maxima=maxima,
        forward_flops=fwd,
        particles=paper.num_particles,
        default=case(defaults),
        space_mean=case(profiling.space_means(space)),
        population_of_40_from_prior=profiling.population_padding_share(
            space, fwd, fwd, paper.num_particles, maxima, 40, key
        ),
        population_of_40_one_at_a_time=profiling.population_padding_share(
            space, fwd, fwd, paper.num_particles, maxima, 40, key, member_batch=1
        ),
    )


def projection(results: list[dict], agent: pets_lib.PETS, config: ThroughputConfig) -> dict:
    """The study's PBT experiment (40 x 300 half_cheetah trials) on this device.

    Uses the best rate measured over the population sizes: the device's throughput, since a
    population runs as one program whatever its size.
    """
    best = {
        "planner": max(results, key=lambda r: r["planner"]["flops_per_second"]),
        "train": max(results, key=lambda r: r["train"]["samples_per_second"]),
        "env": max(results, key=lambda r: r["env_alone"]["steps_per_second"]),
    }
    cheetah = envs.load("half_cheetah")
    paper = presets.pets_config(cheetah, "paper", 1)
    direct = config.preset == "paper" and config.env == "half_cheetah"
    proj = profiling.paper_projection(
        planner_flops_per_second=best["planner"]["planner"]["flops_per_second"],
        train_samples_per_second=best["train"]["train"]["samples_per_second"],
        env_steps_per_second=best["env"]["env_alone"]["steps_per_second"],
        paper_forward_flops=_forward_flops(cheetah, paper),
        measured_forward_flops=ensemble_lib.forward_flops(agent.ensemble.config),
        paper_ensemble_size=paper.ensemble_size,
        measured_ensemble_size=agent.config.ensemble_size,
    )
    basis = (
        "measured at the paper sizes on half_cheetah"
        if direct
        else f"rescaled by FLOPs from preset={config.preset} env={config.env} (rough)"
    )
    rates_from = {k: r["population"] for k, r in best.items()}
    return dict(**proj, rates_from_population=rates_from, basis=basis)


def _add_scaling(results: list[dict]) -> None:
    """vmap efficiency and batching speed-up of every rate, per wall and per CPU second."""
    sizes = [r["population"] for r in results]
    measures = {  # name: (work done, its record with 'seconds' and 'cpu_seconds')
        "trial": (lambda r: r["population"] * r["steps"], lambda r: r["trial"]),
        "env_alone": (
            lambda r: r["population"] * r["env_alone"]["steps"],
            lambda r: r["env_alone"],
        ),
        "train": (lambda r: r["train"]["samples"], lambda r: r["train"]),
        "planner": (lambda r: r["planner"]["transitions"], lambda r: r["planner"]),
    }
    for name, (amount, record) in measures.items():
        for suffix, field in (("", "seconds"), ("_cpu", "cpu_seconds")):
            rates = [amount(r) / max(record(r)[field], 1e-9) for r in results]
            for r, eff in zip(results, profiling.scaling_efficiency(sizes, rates), strict=True):
                r.setdefault(f"vmap_efficiency{suffix}", {})[name] = eff
                # throughput(N) / throughput(smallest N): N/N0 where batching is free (an
                # idle accelerator), ~1 where one member already saturates the device (CPU).
                r.setdefault(f"batching_speedup{suffix}", {})[name] = (
                    eff * r["population"] / sizes[0]
                )


def run(config: ThroughputConfig, log=lambda line: print(line, file=sys.stderr)) -> dict:
    """Measures every population size of `config`; returns the JSON-able result.

    Args:
      config: what to measure (validated here).
      log: receives one progress line per measurement.

    Returns:
      dict with 'config', 'pets_config', 'hparams', 'device', 'matmul' (roofline), 'results'
      (one dict per population size, ascending), 'model_forward' (the ensemble's forward pass
      alone at the planner's batch), 'padding' and 'paper_scale_projection'.
    """
    config.validate()
    steps = config.steps or DEFAULT_STEPS[config.preset]
    agent = make_agent(config, steps)
    hparams = presets.study_hparams(agent)
    key = jax.random.PRNGKey(config.seed)
    roofline = profiling.matmul_roofline()
    log(f"matmul 2048^3 float32: {roofline['flops_per_second'] / 1e9:.1f} GFLOP/s")
    results = []
    for i, n in enumerate(config.populations):
        key, sub = jax.random.split(key)
        profile_dir = config.profile_dir if i == 0 else None
        result = measure_population(
            agent,
            hparams,
            n,
            steps,
            sub,
            profile_dir,
            config.min_seconds,
            member_batch=population_lib.resolve_member_batch(config.member_batch, n),
        )
        results.append(result)
        log(
            f"population {n}: trial {result['trial_seconds']:.2f} s, "
            f"compile {result['compile_seconds_total']:.1f} s"
        )
    results.sort(key=lambda r: r["population"])
    _add_scaling(results)
    key, model_key = jax.random.split(key)
    model_forward = planner_costs.measure_model_forward(
        agent, hparams, model_key, config.min_seconds
    )
    log(
        f"model forward alone: {model_forward['flops_per_second'] / 1e9:.1f} GFLOP/s, "
        f"{model_forward['roofline_ratio']:.2f} of the matmul"
    )
    key, pad_key = jax.random.split(key)
    return dict(
        config=dict(dataclasses.asdict(config), steps=steps),
        pets_config=agent.config._asdict(),
        hparams=pets_lib.hparams_dict(hparams),
        device=dict(
            platform=jax.devices()[0].platform,
            kind=jax.devices()[0].device_kind,
            count=jax.device_count(),
            cpu_count=os.cpu_count(),
            jax=jax.__version__,
            xla_flags=os.environ.get("XLA_FLAGS", ""),
            # compile seconds are small when this persistent cache already holds a program
            compilation_cache_dir=jax.config.jax_compilation_cache_dir,
        ),
        matmul=roofline,
        results=results,
        model_forward=model_forward,
        padding=padding_report(config, agent, pad_key),
        paper_scale_projection=projection(results, agent, config),
    )
