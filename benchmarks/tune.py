r"""Tunes a population of PETS agents with random search, Hyperband, PBT, PBT-BT, PB2 or BOHB.

  python -m benchmarks.tune --env=cartpole --tuner=pbt --population=4 --trials=8 \
      --ready_interval=2 --space=planning --preset=tiny --out=runs/pbt

Flags -> `jaxmbrl.experiments.TuneConfig` -> `jaxmbrl.experiments.run`. Writes
DIR/summary.json, DIR/members.jsonl (one line per member per trial), DIR/returns.png,
DIR/schedules.png, DIR/schedule.npz (every decision: copies and hyperparameters), and orbax
checkpoints under DIR/checkpoints. `--tuner=replay --schedule=DIR/schedule.npz` replays a
recorded schedule on another seed or env. Re-running with the same --out (and --resume)
continues from the newest complete checkpoint. SIGTERM or Ctrl-C stops the run at once
(the trial in flight is abandoned, the last complete tuner step checkpointed) with one line
saying how to resume, exit status 143 / 130; a second process on the same --out is refused.

The members are split over --devices (default: all); a population that does not divide over
them is an error. Several processes (one per host or GPU) join with --coordinator_address
(HOST:PORT of process 0, with --num_processes and --process_id, or 'auto' under Slurm); they
share --out, each writes its checkpoint shards, process 0 the records and plots.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import analysis, experiments, runtime
from jaxmbrl.experiments.progress import Progress


def define_flags() -> None:
    _cli.define_flags(experiments.TuneConfig)
    _cli.define_out("runs/tune", "config.json, members.jsonl, summary.json, plots, checkpoints")
    flags.DEFINE_bool(
        "resume", True, "Continue a run found in --out (with --noresume such a run is an error)."
    )
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(experiments.TuneConfig)
    out = flags.FLAGS.out
    if not flags.FLAGS.resume and os.path.exists(os.path.join(out, "config.json")):
        _cli.usage_error(f"--out={out} already holds a run and --noresume was given")
    logging.set_verbosity(logging.WARNING)  # JAX's backend and orbax log at INFO
    placement = experiments.distributed
    try:  # before --out is touched: a bad device count leaves nothing behind
        placement.initialize(config.coordinator_address, config.num_processes, config.process_id)
        placement.check_population(config.population, placement.make_mesh(config.devices))
    except ValueError as error:
        _cli.usage_error(str(error))
    _cli.prepare_out(out, lock=placement.is_primary())  # process 0 locks for all
    runtime.enable_compilation_cache()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    progress = Progress(log=log)  # a bar on a terminal, plain lines otherwise
    with _cli.faults_exit():  # SIGTERM/SIGINT, a failed write: one line, see _cli
        try:
            summary = experiments.run(config, out, log=log, progress=progress)
        except ValueError as error:  # settings of another run in --out: nothing was written
            _cli.usage_error(str(error))
        finally:
            progress.close()
    if not placement.is_primary():
        return
    analysis.plot_run(os.path.join(out, "members.jsonl"), out)
    num = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    first, last = summary["first_step"] or {}, summary["last_step"] or {}
    print(
        f"{summary['tuner']} on {summary['env']}: best return {num(summary['best_return'])} "
        f"(member {summary['best_member']}), population mean "
        f"{num(first.get('mean_fitness'))} after the first step -> "
        f"{num(last.get('mean_fitness'))} at the end; {summary['wall_seconds']:.0f} s wall, "
        f"{summary['compile_seconds']:.0f} s compile; results in {out}"
    )


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
