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

With several devices (`devices`, default all) the members of the population step, of model
training and of the planning step are split over them as in a tuning run
(`experiments.distributed`); rates are totals over the devices, and `per_device` divides
them by the device count. The MJX step alone, the matmul roofline and the model's forward
pass alone run on one device.
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

from jaxmbrl import envs
from jaxmbrl import population as population_lib
from jaxmbrl import replay as replay_lib
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets
from jaxmbrl.experiments import distributed
from jaxmbrl.models import ensemble as ensemble_lib
from jaxmbrl.options import check_options, option
from jaxmbrl.profiling import flops, planner_costs, reports, trace_ops
from jaxmbrl.profiling import timing as timers

DEFAULT_STEPS = {"tiny": 25, "paper": 2}


@dataclasses.dataclass(frozen=True)
class ThroughputConfig:
    """What `benchmarks/throughput.py` measures (its flags)."""

    env: str = option("cartpole", "Environment.", choices=envs.ALL_ENVS)
    population: tuple[int, ...] = option((1, 2, 4, 8), "Population sizes to measure.", low=1)
    preset: str = option("tiny", "Model/planner sizes.", choices=presets.PRESETS)
    steps: int = option(
        0,
        "Env steps per timed trial (0: 25 for tiny, 2 for paper: a paper-size planning step "
        "costs seconds per member on a CPU).",
        low=0,
    )
    train_rows: int = option(2000, "Replay rows for the model-training measurement.", low=64)
    seed: int = option(0, "Random seed.")
    profile_dir: str | None = option(
        None,
        "Directory for a jax.profiler trace of one step; the ops' self time by kind of work "
        "(profiling.trace_ops) is printed and stored in the result's 'profile'.",
    )
    min_seconds: float = option(
        1.0, "Timing budget per measurement: fast calls repeat, the best is kept.", low=0.0
    )
    member_batch: int = option(0, population_lib.MEMBER_BATCH_HELP, low=0)
    devices: int = option(
        0, "Devices the members are split over (0: all); every size must divide over them.", low=0
    )
    compare: str | None = option(
        None,
        "A git revision: instead of the full profile, time one planning step of this tree and "
        "of that revision alternately (`jaxmbrl.profiling.compare`; one --population size).",
    )
    compare_rounds: int = option(3, "Alternations of --compare (at least 3).", low=3)

    def validate(self) -> None:
        """Raises ValueError with one line naming the bad value and the valid range."""
        check_options(self)
        if len(set(self.population)) != len(self.population):
            raise ValueError(f"population={list(self.population)} has repeated sizes")
        if self.compare is not None and len(self.population) != 1:
            raise ValueError(
                f"population={list(self.population)}: --compare times one population size"
            )


def make_mesh(config: ThroughputConfig) -> jax.sharding.Mesh:
    """The devices the members are split over; ValueError (one line) if a size does not
    divide over them. Looks at the devices, compiles nothing."""
    mesh = distributed.make_mesh(config.devices)
    for n in config.population:
        distributed.check_population(n, mesh)
    return mesh


def make_agent(config: ThroughputConfig, steps: int) -> pets_lib.PETS:
    """The PETS agent measured: `config.preset` sizes, trials of `steps` env steps."""
    env = envs.load(config.env)
    capacity = max(config.train_rows, 8 * steps)
    pets_config = presets.pets_config(
        env, config.preset, 1, trial_length=steps, replay_capacity=capacity
    )
    return pets_lib.make_pets(env, pets_config)


def _planner(agent: pets_lib.PETS, member_map):
    """One planning step (`agent.plan` from the initial mean) mapped over agents."""
    return member_map(planner_costs.first_plan_fn(agent))


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
    shardings = jax.tree.map(lambda x: x.sharding, state)

    def step_fn(state):  # the state stays where it was, so the program's output is its input
        state, metrics = population.step(state)
        return jax.lax.with_sharding_constraint(state, shardings), metrics

    step, compile_s["population_step"] = timers.compile_timed(
        step_fn, state, compiler_options=env.compiler_options
    )
    out["program_memory"] = timers.program_memory(step)
    start = time.perf_counter()
    state, _ = jax.block_until_ready(step(state))
    out["first_trial_seconds"] = time.perf_counter() - start
    (state, metrics), timing = timers.time_calls(step, state, min_seconds=min_seconds, max_calls=3)
    out["trial_seconds"] = timing.best
    out["trial"] = dict(seconds=timing.best, cpu_seconds=timing.cpu, calls=timing.calls)
    out["env_steps_per_second"] = n * steps / timing.best
    out["trial_return_mean"] = float(np.mean(metrics["trial_return"]))
    if profile_dir:
        with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
            jax.block_until_ready(step(state))
        out["profile_dir"] = profile_dir
        trace = trace_ops.latest_trace(profile_dir)
        out["profile"] = trace_ops.summarize(trace, step.as_text())
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
    mesh: jax.sharding.Mesh | None = None,
) -> dict:
    """All measurements at population size `n` (see the module docstring).

    `mesh` (default: one device) is what the members are split over (`n` must divide).
    """
    cfg, env = agent.config, agent.env
    mesh = mesh if mesh is not None else distributed.make_mesh(1)
    member_map = distributed.member_map(mesh, member_batch)
    split = distributed.members_sharding(mesh)
    batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), hparams)
    batched = jax.device_put(batched, split)
    population = population_lib.make_population(
        agent,
        n,
        lambda unit: batched,
        member_batch=member_batch,
        distribute=distributed.shard_members(mesh),
    )
    init_key, env_key, act_key, data_key, train_key, plan_key = jax.random.split(key, 6)
    unit = jnp.zeros((n, 1), jnp.float32)
    shardings = distributed.population_shardings(
        jax.eval_shape(population.init, init_key, unit), mesh
    )
    state = jax.jit(population.init, out_shardings=shardings)(init_key, unit)
    out: dict[str, Any] = dict(population=n, steps=steps, devices=mesh.size)
    compile_s: dict[str, float] = {}
    state = _measure_trial(population, state, out, compile_s, env, steps, profile_dir, min_seconds)

    # The MJX step alone, vmapped at batch n.
    env_steps = max(steps, 10)
    env_states = jax.jit(jax.vmap(env.reset))(jax.random.split(env_key, n))
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)
    actions = jax.random.uniform(act_key, (env_steps, n, env.action_size), minval=low, maxval=high)
    rollout, compile_s["env"] = timers.compile_timed(
        _env_rollout(env, env_steps), env_states, actions, compiler_options=env.compiler_options
    )
    _, timing = timers.time_calls(rollout, env_states, actions, min_seconds=min_seconds)
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
    replay = jax.jit(lambda k: _filled_replay(k, agent, n), out_shardings=split)(data_key)
    agents = state.members.agents._replace(replay=replay)
    train_keys = jax.device_put(jax.random.split(train_key, n), split)
    train, compile_s["train"] = timers.compile_timed(
        member_map(agent.train_model), train_keys, agents, batched
    )
    (_, train_metrics), timing = timers.time_calls(
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
    obs = jax.device_put(env_states.obs, split)
    plan_keys = jax.device_put(jax.random.split(plan_key, n), split)
    models = state.members.agents.model
    planner, compile_s["planner"] = timers.compile_timed(
        _planner(agent, member_map), plan_keys, models, obs, batched
    )
    hp = batched.planner
    work = flops.planner_work(
        fwd_model, hp.iterations, hp.population, hp.horizon, cfg.num_particles
    )
    _, timed = timers.time_against_matmul(
        planner, plan_keys, models, obs, batched, flops=work["flops"], min_seconds=min_seconds
    )
    executed = flops.executed_planner_flops(
        ensemble_lib.forward_flops(agent.ensemble.config),
        hp.iterations,
        hp.horizon,
        cfg.max_population,
        cfg.num_particles,
        population=hp.population,
        candidate_chunk=cfg.candidate_chunk,
        flat=True,
    )
    out["planner"] = dict(**work, executed_flops=executed, **timed)
    out["planner"]["transitions_per_second"] = work["transitions"] / timed["seconds"]
    out["per_device"] = dict(
        env_steps_per_second=out["env_steps_per_second"] / mesh.size,
        train_samples_per_second=out["train"]["samples_per_second"] / mesh.size,
        planner_transitions_per_second=out["planner"]["transitions_per_second"] / mesh.size,
        planner_flops_per_second=out["planner"]["flops_per_second"] / mesh.size,
    )
    out["compile_seconds"] = compile_s
    out["compile_seconds_total"] = sum(compile_s.values())
    out["peak_memory"] = timers.peak_memory()
    return out


def run(config: ThroughputConfig, log=lambda line: print(line, file=sys.stderr)) -> dict:
    """Measures every population size of `config`; returns the JSON-able result.

    Args:
      config: what to measure (validated here).
      log: receives one progress line per measurement.

    Returns:
      dict with 'config', 'pets_config', 'hparams', 'device', 'matmul' (roofline), 'results'
      (one dict per population size, ascending; total rates and their 'per_device' share),
      'model_forward' (the ensemble's forward pass alone at the planner's batch), 'padding'
      and 'paper_scale_projection'.
    """
    config.validate()
    mesh = make_mesh(config)
    steps = config.steps or DEFAULT_STEPS[config.preset]
    agent = make_agent(config, steps)
    hparams = presets.study_hparams(agent, config.preset)
    key = jax.random.PRNGKey(config.seed)
    roofline = timers.matmul_roofline()
    log(f"matmul 2048^3 float32: {roofline['flops_per_second'] / 1e9:.1f} GFLOP/s")
    results = []
    for i, n in enumerate(config.population):
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
            mesh=mesh,
        )
        results.append(result)
        log(
            f"population {n} on {mesh.size} device(s): trial {result['trial_seconds']:.2f} s, "
            f"compile {result['compile_seconds_total']:.1f} s"
        )
        for line in trace_ops.format_summary(result["profile"]) if "profile" in result else []:
            log(line)
    results.sort(key=lambda r: r["population"])
    reports.add_scaling(results)
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
        pets_config=dataclasses.asdict(agent.config),
        hparams=pets_lib.hparams_dict(hparams),
        device=dict(
            platform=jax.devices()[0].platform,
            kind=jax.devices()[0].device_kind,
            count=jax.device_count(),
            devices_used=mesh.size,
            cpu_count=os.cpu_count(),
            jax=jax.__version__,
            xla_flags=os.environ.get("XLA_FLAGS", ""),
            # compile seconds are small when this persistent cache already holds a program
            compilation_cache_dir=jax.config.jax_compilation_cache_dir,
        ),
        matmul=roofline,
        results=results,
        model_forward=model_forward,
        padding=reports.padding_report(config.env, agent, pad_key),
        paper_scale_projection=reports.projection(results, agent, config.preset),
    )


def rate_lines(result: dict) -> list[str]:
    """Total and per-device rates of every population size (printed by the binary)."""
    lines = []
    for r in result["results"]:
        d, per = r["devices"], r["per_device"]
        lines.append(
            f"population {r['population']} on {d} device(s): env steps/s "
            f"{r['env_steps_per_second']:.0f} total, {per['env_steps_per_second']:.0f} per "
            f"device; train samples/s {r['train']['samples_per_second']:.0f} total, "
            f"{per['train_samples_per_second']:.0f} per device; planner transitions/s "
            f"{r['planner']['transitions_per_second']:.0f} total, "
            f"{per['planner_transitions_per_second']:.0f} per device"
        )
    return lines
