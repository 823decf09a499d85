r"""Runs one PETS agent for a number of trials and prints each trial's return and timing.

  python -m benchmarks.pets --env=cartpole --trials=10 --preset=tiny --out=runs/pets

Flags -> `jaxmbrl.experiments.single.AgentConfig` -> `jaxmbrl.experiments.single.run`.
Writes DIR/config.json, DIR/trials.jsonl (one line per trial), DIR/summary.json and
DIR/returns.png. Compile time is measured apart (ahead-of-time compilation of the step).
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import analysis, runtime
from jaxmbrl.experiments import rundir, single


def define_flags() -> None:
    _cli.define_flags(single.AgentConfig)
    _cli.define_out("runs/pets", "config.json, trials.jsonl, summary.json, returns.png")
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # keep stderr for our own lines
    config = _cli.config_from_flags(single.AgentConfig)
    out = flags.FLAGS.out
    try:
        if rundir.saved_settings(out) is not None:  # a run with other settings: refused first
            rundir.check_settings(out, dataclasses.asdict(config))
        single.build(config)  # bad hyperparameter values: one line, before any compile
    except ValueError as error:
        _cli.usage_error(str(error))
    _cli.prepare_out(out)
    runtime.enable_compilation_cache()
    err = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731

    def log(line: str) -> None:  # trial lines on stdout, the rest on stderr
        (print if line.startswith("trial ") else err)(line)

    try:
        summary = single.run(config, out, log=log)
    except ValueError as error:  # --out holds a run with other settings
        _cli.usage_error(str(error))
    analysis.plot_trials(os.path.join(out, "trials.jsonl"), out)
    print(
        f"PETS on {config.env}: best return {summary['best_return']:.2f}, final "
        f"{summary['final_return']:.2f}; results in {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
