"""Padding of a PETS population's planner: accounting, CEM chunk size, and program size.

PETS (Chua et al., NeurIPS 2018) tuned by PBT (Zhang et al., AISTATS 2021) runs a
population of planners with different horizons, CEM populations and iterations as one
program. This measures what `jaxmbrl.planning.cem` (chunked candidates, one flat loop) and
`jaxmbrl.population` (members sorted by work, mapped in groups) do about the padding:
  * `padding`: the padding share of a population drawn from the planning space in the
    accelerator and CPU defaults (`reports.padding_report`, accounting only);
  * `chunk_tradeoff`: one planning step at each `candidate_chunk`, timed interleaved with
    the matmul (smaller chunks: less padding, smaller matrix products);
  * `prior_members_planning`: a planning step of members drawn from the planning space,
    one at a time, unchunked against chunked (what the padding accounting predicts);
  * `program_sizes`: the population step compiled as one vmap, in sorted groups and one
    member at a time: compile seconds, generated code and temporary memory.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from jaxmbrl import envs, experiments, tuners
from jaxmbrl import population as population_lib
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets
from jaxmbrl.models import ensemble as ensemble_lib
from jaxmbrl.options import check_options, option
from jaxmbrl.profiling import flops, planner_costs, reports, timing


@dataclasses.dataclass(frozen=True)
class PaddingConfig:
    """What `benchmarks/padding.py` measures (its flags)."""

    env: str = option("half_cheetah", "Environment of the planning step.", choices=envs.ALL_ENVS)
    preset: str = option(
        "paper", "Model/planner sizes of the planning step.", choices=presets.PRESETS
    )
    chunks: tuple[int, ...] = option(
        (500, 250, 100, 50), "candidate_chunk values to time one planning step with.", low=1
    )
    min_seconds: float = option(2.0, "Timing budget per chunk size (best of >= 3).", low=0.0)
    members: int = option(40, "Population drawn from the prior for the accounting.", low=1)
    prior_members: int = option(
        4, "Members from the prior planned one at a time, unchunked vs chunked (0: skip).", low=0
    )
    prior_chunk: int = option(100, "candidate_chunk of the chunked prior members.", low=1)
    program_population: int = option(
        8, "Members of the tiny cartpole population whose step programs are compared.", low=2
    )
    seed: int = option(0, "Random seed.")

    def validate(self) -> None:
        check_options(self)
        if len(set(self.chunks)) != len(self.chunks):
            raise ValueError(f"chunks={list(self.chunks)} has repeated sizes")


def chunk_tradeoff(
    env_name: str, preset: str, chunks: tuple[int, ...], min_seconds: float, seed: int = 0
) -> dict[str, Any]:
    """One planning step (study defaults) per `candidate_chunk`, interleaved with the matmul.

    Every chunk size does the same useful work (the default CEM population), so the FLOP/s
    compare the chunked programs directly.
    """
    env = envs.load(env_name)
    base = presets.pets_config(env, preset, 1, trial_length=1)
    key = jax.random.PRNGKey(seed)
    programs = {}
    for chunk in chunks:
        agent = pets_lib.make_pets(env, dataclasses.replace(base, candidate_chunk=chunk))
        programs[chunk] = planner_costs.planning_step_program(
            agent, presets.study_hparams(agent), key
        )
    _, timings = timing.compare_against_matmul(programs, min_seconds=min_seconds)
    return dict(env=env_name, preset=preset, max_population=base.max_population, timings=timings)


def prior_members_planning(
    env_name: str, members: int, chunks: tuple[int | None, ...], min_seconds: float, seed: int = 0
) -> dict[str, Any]:
    """One planning step of `members` agents drawn from the planning space's prior, one at a
    time (the CPU default), per `candidate_chunk` (None: all candidates at once, the padding
    before chunking), timed interleaved with the matmul. Useful FLOPs are the same for
    every chunk, so their FLOP/s compare the padded programs directly."""
    env = envs.load(env_name)
    space = tuners.get_space("planning", env=env_name)
    key = jax.random.PRNGKey(seed)
    unit = space.sample_unit(key, members)
    programs, drawn = {}, None
    for chunk in chunks:
        config, _ = experiments.config_for_space(
            env, "paper", 1, space, trial_length=1, candidate_chunk=chunk
        )
        agent = pets_lib.make_pets(env, config)
        hparams = experiments.unit_to_hparams(space, presets.study_hparams(agent))(unit)
        state = jax.jit(jax.vmap(agent.init))(jax.random.split(key, members), hparams)
        obs = jax.vmap(env.reset)(jax.random.split(key, members)).obs
        plan = population_lib.map_members(planner_costs.first_plan_fn(agent), 1)
        args = (jax.random.split(key, members), state.model, obs, hparams)
        compiled, _ = timing.compile_timed(plan, *args, compiler_options=env.compiler_options)
        p = hparams.planner
        fwd = ensemble_lib.forward_flops(agent.ensemble.config)
        work = flops.planner_work(fwd, p.iterations, p.population, p.horizon, config.num_particles)
        programs[str(chunk)] = (compiled, args, work["flops"])
        drawn = {k: np.asarray(v).tolist() for k, v in p._asdict().items()}
    _, timings = timing.compare_against_matmul(programs, min_seconds=min_seconds)
    return dict(env=env_name, members=members, hparams=drawn, timings=timings)


def program_sizes(population_size: int, seed: int = 0) -> dict[str, Any]:
    """The tiny cartpole population step compiled three ways (no run): compile seconds,
    generated code bytes (where the backend reports them), the optimised HLO's size and
    while loops, and argument/output/temporary bytes (`memory_analysis`)."""
    env = envs.load("cartpole")
    space = tuners.get_space("planning")
    config, space = experiments.config_for_space(env, "tiny", 2, space, trial_length=10)
    agent = pets_lib.make_pets(env, config)
    to_hparams = experiments.unit_to_hparams(space, presets.study_hparams(agent))
    unit = space.sample_unit(jax.random.PRNGKey(seed), population_size)
    group = population_lib.accelerator_member_batch(population_size)
    ways = {"one vmap": None, f"sorted groups of {group}": group, "one at a time": 1}
    out = {}
    for name, member_batch in ways.items():
        population = population_lib.make_population(
            agent, population_size, to_hparams, member_batch=member_batch
        )
        state = jax.jit(population.init)(jax.random.PRNGKey(seed), unit)
        compiled, seconds = timing.compile_timed(population.step, state)
        analysis = compiled.memory_analysis()
        code = getattr(analysis, "generated_code_size_in_bytes", None) if analysis else None
        hlo = compiled.as_text() or ""
        out[name] = dict(
            member_batch=member_batch,
            compile_seconds=seconds,
            # 0 on XLA:CPU (not reported there); the optimised HLO's size is the fallback.
            generated_code_bytes=None if code is None else int(code),
            optimized_hlo_bytes=len(hlo),
            optimized_hlo_while_loops=hlo.count(" while("),
            memory=timing.program_memory(compiled),
        )
    return dict(population=population_size, programs=out)


def run(config: PaddingConfig, log=print) -> dict[str, Any]:
    """All three measurements of the module docstring."""
    config.validate()
    env = envs.load(config.env)
    agent = pets_lib.make_pets(env, presets.pets_config(env, "tiny", 1))
    log("padding accounting ...")
    padding = reports.padding_report(
        config.env, agent, jax.random.PRNGKey(config.seed), members=config.members
    )
    # The CPU default's padding at each chunk size: what a smaller chunk buys.
    space = tuners.get_space("planning", env=config.env)
    maxima = padding["maxima"]
    cpu_share = {
        chunk: flops.population_padding_share(
            space,
            1.0,
            1.0,
            1,
            maxima,
            config.members,
            jax.random.PRNGKey(config.seed),
            member_batch=1,
            candidate_chunk=chunk,
        )["padding_share"]
        for chunk in sorted(set(config.chunks) | {maxima["population"]})
    }
    log("chunk trade-off ...")
    chunks = chunk_tradeoff(
        config.env, config.preset, config.chunks, config.min_seconds, config.seed
    )
    prior = None
    if config.prior_members:
        log("prior members, unchunked vs chunked ...")
        prior = prior_members_planning(
            config.env,
            config.prior_members,
            (None, config.prior_chunk),
            config.min_seconds,
            config.seed,
        )
    log("program sizes ...")
    sizes = program_sizes(config.program_population, config.seed)
    return dict(
        config=dataclasses.asdict(config),
        padding=padding,
        cpu_default_share_by_chunk=cpu_share,
        chunk_tradeoff=chunks,
        prior_members=prior,
        program_sizes=sizes,
        backend=jax.default_backend(),
        devices=[str(d) for d in jax.devices()],
    )


def table(result: dict[str, Any]) -> str:
    """Human-readable summary of `run`'s result."""
    pad = result["padding"]
    lines = [
        f"padding of {pad['members']} members from the planning space (maxima {pad['maxima']}, "
        f"chunk {pad['candidate_chunk']}):",
        f"  accelerator default ({pad['population_accelerator_default']['groups']} sorted "
        f"vmapped groups, flat loop): "
        f"{100 * pad['population_accelerator_default']['padding_share']:.1f}%",
        "  CPU default (one at a time): "
        f"{100 * pad['population_cpu_default']['padding_share']:.1f}%",
        f"  one vmap of all: {100 * pad['population_one_vmap']['padding_share']:.1f}%; same groups "
        f"with nested loops: "
        f"{100 * pad['population_accelerator_default_nested']['padding_share']:.1f}%",
        "  by number of sorted groups: "
        + ", ".join(f"{g}: {100 * s:.1f}%" for g, s in pad["population_by_groups"].items()),
    ]
    trade = result["chunk_tradeoff"]
    lines.append(
        f"one planning step ({trade['preset']}, {trade['env']}, CEM population "
        f"{trade['max_population']}) by candidate_chunk:"
    )
    header = f"{'chunk':>7} {'ms':>9} {'GFLOP/s':>9} {'roofline':>9} {'per CPU-s':>9}"
    lines.append(f"{header} {'CPU pad':>8}")
    share = result["cpu_default_share_by_chunk"]
    for chunk, t in trade["timings"].items():
        pad_text = f"{100 * share[chunk]:.1f}%" if chunk in share else "-"
        lines.append(
            f"{chunk:>7} {1e3 * t['seconds']:9.1f} {t['flops_per_second'] / 1e9:9.1f} "
            f"{t['roofline_ratio']:9.2f} {t['roofline_ratio_cpu']:9.2f} {pad_text:>8}"
        )
    prior = result.get("prior_members")
    if prior:
        lines.append(f"{prior['members']} prior members, one at a time, by candidate_chunk:")
        for chunk, t in prior["timings"].items():
            lines.append(
                f"  {chunk:>5}: {1e3 * t['seconds']:9.1f} ms, {1e3 * t['cpu_seconds']:9.1f} "
                f"CPU-ms, useful FLOPs {t['roofline_ratio_cpu']:.2f} of the matmul per CPU-s"
            )
    sizes = result["program_sizes"]
    lines.append(f"population step programs (tiny cartpole, N={sizes['population']}):")
    for name, p in sizes["programs"].items():
        mem = p["memory"] or {}
        code = p["generated_code_bytes"]
        lines.append(
            f"  {name:>20}: compile {p['compile_seconds']:.1f} s, code "
            f"{'-' if not code else f'{code / 1e6:.2f} MB'}, optimised HLO "
            f"{p['optimized_hlo_bytes'] / 1e6:.2f} MB ({p['optimized_hlo_while_loops']} while "
            f"loops), temp {mem.get('temp_bytes', 0) / 1e6:.1f} MB"
        )
    return "\n".join(lines)
