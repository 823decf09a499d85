r"""Compares tuners arm against arm over seeds: PB2 with 4 members against PBT with 8 and 4,
BOHB against Hyperband (the defaults), on the study's cart-pole at the `cpu` preset.

  python -m benchmarks.compare_tuners --out=runs/compare
  python -m benchmarks.compare_tuners --arms=pb2:4,pbt:4 --pairs=pb2:4/pbt:4 --seeds=0,1

Every arm (TUNER:POPULATION) runs once per seed as a tuning-run directory
OUT/TUNER-pN/seedK (the same as `benchmarks.tune` writes; a rerun reads the finished ones and
resumes the rest); OUT/comparison.md and OUT/comparison.json hold per arm the tuner's result
per seed with a bootstrap interval, and per pair (--pairs, A/B) the difference A - B with
its interval. Flags are generated from `jaxmbrl.experiments.comparison.CompareConfig`.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import runtime
from jaxmbrl.analysis import comparison as report
from jaxmbrl.experiments import comparison


def define_flags() -> None:
    _cli.define_flags(comparison.CompareConfig)
    flags.adopt_module_key_flags(_cli)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(comparison.CompareConfig)
    try:
        comparison.check_runs(comparison.plan(config))
    except ValueError as error:
        _cli.usage_error(str(error))
    _cli.prepare_out(config.out)
    runtime.enable_compilation_cache()
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    with _cli.faults_exit():  # a signal stops the run in flight; a rerun resumes it
        manifest = comparison.run_comparison(config, log=log)
    settings = dataclasses.asdict(config)
    result = report.write_comparison(manifest, settings, config.out)
    for p in result["pairs"]:
        d = p["difference"]
        interval = "" if d["low"] is None else f" [{d['low']:.1f}, {d['high']:.1f}]"
        mean = "n/a" if d["mean"] is None else f"{d['mean']:.1f}"
        print(f"{p['a']} - {p['b']}: {mean}{interval} (n={d['n']}): {p['reading']}")
    print(f"report: {config.out}/comparison.md; {time.perf_counter() - start:.0f} s wall")


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
