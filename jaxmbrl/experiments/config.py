"""Settings of one tuning run of Zhang et al. (AISTATS 2021): PETS tuned by one tuner.

`TuneConfig` is the one source of `benchmarks/tune.py`'s flags (names, defaults, help and
valid choices are generated from its fields) and of a run directory's `config.json`.
"""

from __future__ import annotations

import dataclasses

from jaxmbrl import envs, tuners
from jaxmbrl import population as population_lib
from jaxmbrl.agents import presets
from jaxmbrl.experiments import schedules
from jaxmbrl.options import check_options, option

# Where the members run: any of these may change when a run is resumed.
PLACEMENT_FIELDS = ("devices", "coordinator_address", "num_processes", "process_id")

# Every registered tuner, and `replay`: re-run a recorded schedule (`schedule.npz`).
TUNERS = (*tuners.REGISTRY, "replay")
# The defaults of PB2's and BOHB's settings are their tuners' (written once, there).
_PB2, _BOHB = tuners.PB2Config(), tuners.BOHBConfig()


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """Settings of one tuning run (the flags of `benchmarks/tune.py`)."""

    env: str = option("cartpole", "Environment.", choices=envs.ALL_ENVS)
    tuner: str = option("pbt", "Tuner (replay: re-run the schedule of --schedule).", choices=TUNERS)
    population: int = option(4, "Population slots (members trained side by side).", low=1)
    trials: int = option(8, "Trials per member (Hyperband, BOHB: the max budget R).", low=1)
    ready_interval: int = option(2, "Trials between tuner updates.", low=1)
    space: str = option(
        "planning", "Search space (the study's groups).", choices=tuners.SPACE_NAMES
    )
    seed: int = option(0, "Random seed.")
    preset: str = option("tiny", "Model/planner sizes.", choices=presets.PRESETS)
    trial_length: int = option(
        0, "Env steps per trial (0: the preset's; tiny caps episodes at 100).", low=0
    )
    eta: int = option(3, "Hyperband's (and BOHB's) halving rate eta.", low=2)
    pb2_history: int = option(
        _PB2.history, "PB2: tuner intervals of data its GP is fitted on.", low=1
    )
    pb2_candidates: int = option(
        _PB2.num_candidates, "PB2: random points its UCB acquisition is maximised over.", low=1
    )
    bohb_top_n_percent: int = option(
        _BOHB.top_n_percent, "BOHB: percent of results in the good density l(x).", low=1, high=99
    )
    bohb_num_samples: int = option(
        _BOHB.num_samples, "BOHB: draws from l(x) scored by g(x) / l(x) per proposal.", low=1
    )
    bohb_random_fraction: float = option(
        _BOHB.random_fraction,
        "BOHB: fraction of configurations drawn from the prior.",
        low=0.0,
        high=1.0,
    )
    bohb_bandwidth_factor: float = option(
        _BOHB.bandwidth_factor, "BOHB: bandwidth multiplier of its draws from l(x).", low=1e-6
    )
    schedule: str = option("", "--tuner=replay: DIR/schedule.npz of an earlier run to replay.")
    checkpoint_every: int = option(1, "Tuner steps per checkpoint.", low=1)
    keep_checkpoints: int = option(2, "Checkpoints kept.", low=1)
    progress_every: int = option(
        50, "Env steps between progress reports from inside a compiled trial (0: none).", low=0
    )
    member_batch: int = option(0, population_lib.MEMBER_BATCH_HELP, low=0)
    devices: int = option(
        0, "Devices the members are sharded over (0: all devices of all processes).", low=0
    )
    coordinator_address: str = option(
        "",
        "Multi-process runs: 'HOST:PORT' of process 0's coordinator, 'auto' for JAX's cluster "
        "auto-detection (Slurm, Open MPI, TPU pods); '' for one process.",
    )
    num_processes: int = option(0, "Processes of a multi-process run (0: auto-detect).", low=0)
    process_id: int = option(-1, "This process's index (-1: auto-detect).", low=-1)

    def validate(self) -> None:
        """Raises ValueError with one line naming the bad value and the valid range."""
        check_options(self)
        if self.ready_interval > self.trials:
            raise ValueError(
                f"ready_interval={self.ready_interval} must be <= trials={self.trials}"
            )
        if (self.tuner == "replay") != bool(self.schedule):
            raise ValueError(
                f"schedule={self.schedule!r}: a schedule is needed by, and only by, --tuner=replay"
            )
        if self.schedule:
            population = schedules.load_schedule(self.schedule).source.shape[1]
            if population != self.population:
                raise ValueError(
                    f"population={self.population} differs from the schedule's {population} "
                    f"members ({self.schedule})"
                )
        if self.num_processes and self.process_id >= self.num_processes:
            raise ValueError(
                f"process_id={self.process_id} must be < num_processes={self.num_processes}"
            )
        if self.tuner == "pbt_bt" and self.population < 2:
            raise ValueError(f"population={self.population} must be >= 2 for pbt_bt")
