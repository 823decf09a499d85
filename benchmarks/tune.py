r"""Tunes a population of PETS agents with random search, Hyperband, PBT or PBT-BT.

  python -m benchmarks.tune --env=cartpole --tuner=pbt --population=4 --trials=8 \
      --ready_interval=2 --space=planning --preset=tiny --out=runs/pbt

Writes DIR/summary.json, DIR/members.jsonl (one line per member per trial), DIR/returns.png,
DIR/schedules.png, DIR/schedule.npz (every decision: copies and hyperparameters), and orbax
checkpoints under DIR/checkpoints. `--tuner=replay --schedule=DIR/schedule.npz` replays a
recorded schedule on another seed or env. Re-running with the same
--out (or --resume) continues from the newest complete checkpoint.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import tuning

_ENV = flags.DEFINE_string("env", "cartpole", "Environment.")
_TUNER = flags.DEFINE_string("tuner", "pbt", "random | hyperband | pbt | pbt_bt | replay.")
_SCHEDULE = flags.DEFINE_string(
    "schedule", "", "--tuner=replay: DIR/schedule.npz of an earlier run to replay."
)
_POPULATION = flags.DEFINE_integer("population", 4, "Population slots.")
_TRIALS = flags.DEFINE_integer("trials", 8, "Budget per member in trials (Hyperband: max).")
_READY = flags.DEFINE_integer("ready_interval", 2, "Trials between tuner updates.")
_SPACE = flags.DEFINE_string("space", "planning", "model | planning | static | all.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_PRESET = flags.DEFINE_string("preset", "tiny", "tiny | paper.")
_TRIAL_LENGTH = flags.DEFINE_integer(
    "trial_length", 0, "Env steps per trial (0: the preset's; tiny caps episodes at 100)."
)
_ETA = flags.DEFINE_integer("eta", 3, "Hyperband's eta.")
_OUT = flags.DEFINE_string("out", "runs/tune", "Output directory.")
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", 1, "Tuner steps per checkpoint.")
_KEEP = flags.DEFINE_integer("keep_checkpoints", 2, "Checkpoints kept.")
_MEMBER_BATCH = flags.DEFINE_integer(
    "member_batch",
    0,
    "Members per vmap: k runs groups of k in a lax.map (k >= population: one vmap of all); "
    "0: auto, one at a time on CPU, all at once on an accelerator.",
)
_RESUME = flags.DEFINE_bool(
    "resume", True, "Continue a run found in --out (with --noresume such a run is an error)."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = tuning.TuneConfig(
        env=_ENV.value,
        tuner=_TUNER.value,
        population=_POPULATION.value,
        trials=_TRIALS.value,
        ready_interval=_READY.value,
        space=_SPACE.value,
        seed=_SEED.value,
        preset=_PRESET.value,
        trial_length=_TRIAL_LENGTH.value,
        eta=_ETA.value,
        checkpoint_every=_CHECKPOINT_EVERY.value,
        keep_checkpoints=_KEEP.value,
        member_batch=_MEMBER_BATCH.value,
    )
    try:
        config.validate()
        if not _RESUME.value and os.path.exists(os.path.join(_OUT.value, "config.json")):
            raise ValueError(f"--out={_OUT.value} already holds a run and --noresume was given")
        tuning.prepare_out_dir(_OUT.value)
    except ValueError as error:
        _cli.usage_error(str(error))
    _cli.enable_compilation_cache()
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        summary = tuning.run(config, _OUT.value, log=log)
    except ValueError as error:
        _cli.usage_error(str(error))
    num = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    first, last = summary["first_step"] or {}, summary["last_step"] or {}
    print(
        f"{summary['tuner']} on {summary['env']}: best return {num(summary['best_return'])} "
        f"(member {summary['best_member']}), population mean "
        f"{num(first.get('mean_fitness'))} after the first step -> "
        f"{num(last.get('mean_fitness'))} at the end; {summary['wall_seconds']:.0f} s wall, "
        f"{summary['compile_seconds']:.0f} s compile; results in {_OUT.value}"
    )


if __name__ == "__main__":
    _cli.prefer_wide_vectors()  # before JAX initialises its backend
    app.run(main, flags_parser=_cli.parse_flags)
