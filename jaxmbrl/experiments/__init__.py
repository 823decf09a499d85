"""Experiments of Zhang et al. (AISTATS 2021): tuning runs, checkpoints, members over devices.

`run(TuneConfig(...), out_dir)` runs or resumes a tuning run of a PETS population; a run
directory holds its settings, per-member records, checkpoints and recorded schedule.
`config_for_space` / `unit_to_hparams` bridge a tuner's search space to the agent.
"""

from jaxmbrl.experiments import distributed
from jaxmbrl.experiments.checkpoint import Checkpointer
from jaxmbrl.experiments.config import TUNERS, TuneConfig
from jaxmbrl.experiments.hparams import config_for_space, unit_to_hparams
from jaxmbrl.experiments.run import run
from jaxmbrl.experiments.schedules import load_schedule, save_schedule
from jaxmbrl.experiments.tuning import (
    Experiment,
    RunState,
    build,
    compile_programs,
    init_run,
    make_tuner,
)

__all__ = [
    "TUNERS",
    "Checkpointer",
    "Experiment",
    "RunState",
    "TuneConfig",
    "build",
    "compile_programs",
    "config_for_space",
    "distributed",
    "init_run",
    "load_schedule",
    "make_tuner",
    "run",
    "save_schedule",
    "unit_to_hparams",
]
