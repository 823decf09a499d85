"""Tuners compared at small populations on the study's tasks: PB2 (Parker-Holder et al.,
NeurIPS 2020) against PBT, BOHB (Falkner et al., ICML 2018) against Hyperband, in the setting
of Zhang et al. (AISTATS 2021).

Every arm is TUNER:POPULATION (PB2 with 4 members against PBT with 8 and with 4, say) and runs
once per seed as an ordinary tuning-run directory OUT/TUNER-pN/seedK, resumable and readable
alone. `run_comparison` runs (or resumes) them and returns the manifest;
`jaxmbrl.analysis.comparison` reads the runs back (analysis sits above experiments).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable

from jaxmbrl import envs, tuners
from jaxmbrl.agents import presets
from jaxmbrl.experiments.config import TUNERS, TuneConfig
from jaxmbrl.options import check_options, option

_ARM_HELP = "TUNER:POPULATION"


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Settings of a tuner comparison (`benchmarks/compare_tuners.py`'s flags)."""

    out: str = option("runs/compare", "Output directory (a run per arm and seed, the report).")
    env: str = option("cartpole", "Environment.", choices=envs.ALL_ENVS)
    arms: tuple[str, ...] = option(
        ("pb2:4", "pbt:8", "pbt:4", "bohb:7", "hyperband:7"),
        f"Arms, each {_ARM_HELP} (tuners: {', '.join(t for t in TUNERS if t != 'replay')}).",
    )
    pairs: tuple[str, ...] = option(
        ("pb2:4/pbt:8", "pb2:4/pbt:4", "bohb:7/hyperband:7"),
        "Differences A/B to estimate (A and B among --arms).",
    )
    seeds: tuple[int, ...] = option((0, 1, 2), "Seeds; every arm runs on each.")
    trials: int = option(10, "Trials per member (Hyperband, BOHB: the max budget R).", low=1)
    ready_interval: int = option(2, "Trials between tuner updates.", low=1)
    trial_length: int = option(0, "Env steps per trial (0: the preset's).", low=0)
    preset: str = option("cpu", "Model/planner sizes.", choices=presets.PRESETS)
    space: str = option("planning", "Search space.", choices=tuners.SPACE_NAMES)
    eta: int = option(3, "Hyperband's (and BOHB's) halving rate eta.", low=2)
    progress_every: int = option(
        50, "Env steps between progress reports inside a trial (0: none).", low=0
    )
    confidence: float = option(0.95, "Bootstrap confidence level.", low=0.5, high=0.999)
    resamples: int = option(9999, "Bootstrap resamples.", low=100)

    def validate(self) -> None:
        """Raises ValueError with one line naming the bad value and the valid choices."""
        check_options(self)
        if not self.arms or not self.seeds:
            raise ValueError("arms and seeds must each name at least one entry")
        arms = [parse_arm(a) for a in self.arms]
        if len(set(arms)) < len(arms):
            raise ValueError(f"arms {self.arms} name an arm twice")
        for pair in self.pairs:
            for side in parse_pair(pair):
                if side not in arms:
                    raise ValueError(f"pairs entry {pair!r} names an arm not in --arms")
        for tuner, population in arms:  # each run's own checks, before anything compiles
            TuneConfig(**run_settings(self, tuner, population, self.seeds[0])).validate()


def parse_arm(arm: str) -> tuple[str, int]:
    """'pb2:4' -> ('pb2', 4); ValueError (one line) for anything else."""
    valid = [t for t in TUNERS if t != "replay"]
    tuner, _, population = arm.partition(":")
    if tuner not in valid or not population.isdigit() or int(population) < 1:
        raise ValueError(
            f"arms entry {arm!r} is not {_ARM_HELP} with TUNER one of {', '.join(valid)} "
            "and POPULATION >= 1"
        )
    return tuner, int(population)


def parse_pair(pair: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """'pb2:4/pbt:8' -> (('pb2', 4), ('pbt', 8))."""
    a, sep, b = pair.partition("/")
    if not sep:
        raise ValueError(f"pairs entry {pair!r} is not A/B with A and B arms ({_ARM_HELP})")
    return parse_arm(a), parse_arm(b)


def arm_name(tuner: str, population: int) -> str:
    return f"{tuner}:{population}"


def run_settings(config: CompareConfig, tuner: str, population: int, seed: int) -> dict:
    """TuneConfig fields of one arm's run on one seed."""
    return dict(
        env=config.env,
        tuner=tuner,
        population=population,
        trials=config.trials,
        ready_interval=config.ready_interval,
        space=config.space,
        seed=seed,
        preset=config.preset,
        trial_length=config.trial_length,
        eta=config.eta,
        progress_every=config.progress_every,
    )


def plan(config: CompareConfig) -> list[dict]:
    """One entry per arm and seed: its run directory and settings, arms in the given order."""
    out = []
    for arm in config.arms:
        tuner, population = parse_arm(arm)
        for seed in config.seeds:
            run_dir = os.path.join(config.out, f"{tuner}-p{population}", f"seed{seed}")
            settings = run_settings(config, tuner, population, seed)
            out.append(dict(arm=arm_name(tuner, population), dir=run_dir, settings=settings))
    return out


def check_runs(manifest: list[dict]) -> None:
    """Raises ValueError (one line) if a run directory holds a run with other settings."""
    for entry in manifest:
        path = os.path.join(entry["dir"], "config.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            saved = json.load(f)
        for k, v in entry["settings"].items():
            if k in saved and saved[k] != v:
                raise ValueError(
                    f"{entry['dir']} holds a run with {k}={saved[k]!r}, not {v!r}: use another "
                    "--out or the same settings to resume"
                )


def run_comparison(config: CompareConfig, log: Callable = print) -> list[dict]:
    """Runs (or resumes) every arm on every seed; a finished run (summary.json) is only read."""
    from jaxmbrl.experiments.run import run  # the tuning run: imported where it is used

    manifest = plan(config)
    check_runs(manifest)
    for k, entry in enumerate(manifest, 1):
        head = f"[{k}/{len(manifest)}] {entry['arm']} seed {entry['settings']['seed']}"
        summary_path = os.path.join(entry["dir"], "summary.json")
        if os.path.exists(summary_path):
            log(f"{head}: done, read back")
            with open(summary_path) as f:
                entry["summary"] = json.load(f)
            continue
        log(head)
        settings = TuneConfig(**entry["settings"])
        entry["summary"] = run(settings, entry["dir"], log=lambda line: log(f"  {line}"))
    return manifest
