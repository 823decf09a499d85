r"""Population-throughput profiler of a PETS population (Zhang et al., AISTATS 2021).

  python -m benchmarks.throughput --env=cartpole --preset=tiny --population=1,2,4,8 \
      --out=runs/throughput
  python -m benchmarks.throughput --env=half_cheetah --preset=paper --population=1,2 \
      --steps=2 --out=runs/throughput_paper

Flags -> `jaxmbrl.profiling.throughput.ThroughputConfig` -> `jaxmbrl.profiling.throughput.run`
(what is measured is documented there). Prints a table and the total and per-device rates;
writes DIR/throughput.json and DIR/throughput.png. `--devices=K` splits the members over K
devices (default: all); every population size must divide over them.

  python -m benchmarks.throughput --env=half_cheetah --preset=paper --population=1 \
      --steps=2 --compare=23a60c3 --out=runs/compare

`--compare=REV` is the regression guard (`jaxmbrl.profiling.compare`): one planning step of
this tree and of REV (exported from git, run by the same Python in its own process) timed
alternately; prints both transitions/s and the time ratio with its spread; writes
DIR/compare.json. A REV git does not know exits 2 before anything compiles.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import runtime
from jaxmbrl.experiments import rundir
from jaxmbrl.profiling import compare, plot, throughput


def define_flags() -> None:
    _cli.define_flags(throughput.ThroughputConfig)
    _cli.define_out("runs/throughput", "throughput.json and throughput.png")
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(throughput.ThroughputConfig)
    logging.set_verbosity(logging.WARNING)  # JAX's backend notes are not ours to print
    out = flags.FLAGS.out
    try:  # a size that does not divide over --devices: one line, before --out is touched
        throughput.make_mesh(config)
        if config.profile_dir:  # the profiler would fail only after the compiles
            rundir.prepare_out_dir(config.profile_dir, flag="profile_dir")
    except ValueError as error:
        _cli.usage_error(str(error))
    if config.compare is not None:
        try:
            compare.resolve_rev(config.compare)
        except ValueError as error:
            _cli.usage_error(str(error))
        _cli.prepare_out(out)
        result = compare.run(
            config.compare,
            env=config.env,
            preset=config.preset,
            steps=config.steps or throughput.DEFAULT_STEPS[config.preset],
            population=config.population[0],
            seed=config.seed,
            rounds=config.compare_rounds,
            cache_dir=runtime.enable_compilation_cache(),
        )
        runtime.write_json(os.path.join(out, "compare.json"), result)
        print("\n".join(compare.lines(result)))
        return
    _cli.prepare_out(out)
    runtime.enable_compilation_cache()
    result = throughput.run(config)
    json_path, png_path = (os.path.join(out, f"throughput.{x}") for x in ("json", "png"))
    runtime.write_json(json_path, result)
    plot.plot(result, png_path)
    print(plot.table(result))
    print("\n".join(throughput.rate_lines(result)))
    print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
