"""Reports of the population profiler: padding share, paper-scale projection, scaling.

For PETS (Chua et al., NeurIPS 2018) as tuned by Zhang et al. (AISTATS 2021): how much of
the padded planner's work a search space wastes, how long the study's PBT experiment would
take at the measured rates, and how every rate scales with the population size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import envs, tuners
from jaxmbrl import population as population_lib
from jaxmbrl.agents import pets as pets_lib
from jaxmbrl.agents import presets
from jaxmbrl.experiments.hparams import config_for_space
from jaxmbrl.models import ensemble as ensemble_lib
from jaxmbrl.profiling import flops

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


def forward_flops_of(env, config: pets_lib.PETSConfig) -> int:
    """Forward FLOPs per row of one member of the (padded) ensemble of `config` on `env`."""
    return ensemble_lib.forward_flops(
        ensemble_lib.EnsembleConfig(
            input_size=env.obs_feature_size + env.action_size,
            output_size=env.target_size,
            max_hidden_width=config.max_hidden_width,
            max_hidden_layers=config.max_hidden_layers,
        )
    )


def expected_executed(space, maxima, chunk, grid: int = 4096) -> float:
    """E[ceil(p / chunk) * chunk] of the CEM population p under the prior (midpoint grid)."""
    u = (np.arange(grid, dtype=np.float32) + 0.5) / grid
    population = np.asarray(space["cem_popsize"].from_unit(jnp.asarray(u)))
    return float(np.mean(flops.executed_candidates(population, maxima["population"], chunk)))


def padding_report(env_name: str, agent: pets_lib.PETS, key: jax.Array, members: int = 40) -> dict:
    """Planner FLOPs spent on padding for the study's planning search space (paper maxima).

    The population of `members` drawn from the prior is accounted in the two defaults of
    `population.resolve_member_batch`: on an accelerator `ACCELERATOR_GROUPS` vmapped groups
    of members sorted by work, on a CPU one member at a time; and, for reference, as one vmap
    of all members, at other group counts (`population_by_groups`) and with nested instead
    of PETS' flat planner loop.
    """
    env = agent.env
    space = tuners.get_space("planning", env=env_name)
    paper, _ = config_for_space(env, "paper", 1, space, trial_length=1)
    maxima = dict(
        iterations=paper.max_iterations,
        population=paper.max_population,
        horizon=paper.max_horizon,
    )
    fwd = forward_flops_of(env, paper)  # the planning space leaves the model alone
    defaults = {p.name: p.default for p in space.params}
    chunk = paper.candidate_chunk

    def case(values, executed=None):
        hp = dict(
            iterations=values["num_cem_iters"],
            population=values["cem_popsize"],
            horizon=values["plan_hor"],
        )
        if executed is not None:
            hp["executed_population"] = executed
        return flops.padding_share(fwd, fwd, paper.num_particles, maxima, hp, chunk)

    def population(member_batch, flat=True):
        return flops.population_padding_share(
            space,
            fwd,
            fwd,
            paper.num_particles,
            maxima,
            members,
            key,
            member_batch=member_batch,
            candidate_chunk=chunk,
            flat=flat,
        )

    accelerator_batch = population_lib.accelerator_member_batch(members)
    accelerator_batch = None if accelerator_batch >= members else accelerator_batch

    return dict(
        space="planning",
        env=env_name,
        maxima=maxima,
        forward_flops=fwd,
        particles=paper.num_particles,
        candidate_chunk=chunk,
        members=members,
        default=case(defaults),
        space_mean=case(flops.space_means(space), executed=expected_executed(space, maxima, chunk)),
        population_accelerator_default=population(accelerator_batch),
        population_cpu_default=population(1),
        population_one_vmap=population(None),
        population_by_groups={
            groups: population(-(-members // groups))["padding_share"]
            for groups in (2, 4, 5, 8, 10, 20)
        },
        # The same groups if (iteration, chunk, step) were nested loops (a plain cost_fn).
        population_accelerator_default_nested=population(accelerator_batch, flat=False),
    )


def projection(results: list[dict], agent: pets_lib.PETS, preset: str) -> dict:
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
    direct = preset == "paper" and agent.env.name == "half_cheetah"
    proj = flops.paper_projection(
        planner_flops_per_second=best["planner"]["planner"]["flops_per_second"],
        train_samples_per_second=best["train"]["train"]["samples_per_second"],
        env_steps_per_second=best["env"]["env_alone"]["steps_per_second"],
        paper_forward_flops=forward_flops_of(cheetah, paper),
        measured_forward_flops=ensemble_lib.forward_flops(agent.ensemble.config),
        paper_ensemble_size=paper.ensemble_size,
        measured_ensemble_size=agent.config.ensemble_size,
        experiment=PAPER_EXPERIMENT,
    )
    basis = (
        "measured at the paper sizes on half_cheetah"
        if direct
        else f"rescaled by FLOPs from preset={preset} env={agent.env.name} (rough)"
    )
    rates_from = {k: r["population"] for k, r in best.items()}
    return dict(**proj, rates_from_population=rates_from, basis=basis)


def add_scaling(results: list[dict]) -> None:
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
            for r, eff in zip(results, flops.scaling_efficiency(sizes, rates), strict=True):
                r.setdefault(f"vmap_efficiency{suffix}", {})[name] = eff
                # throughput(N) / throughput(smallest N): N/N0 where batching is free (an
                # idle accelerator), ~1 where one member already saturates the device (CPU).
                r.setdefault(f"batching_speedup{suffix}", {})[name] = (
                    eff * r["population"] / sizes[0]
                )
