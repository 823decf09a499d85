r"""What progress callbacks from inside a compiled trial cost (tiny preset).

  python -m benchmarks.progress_overhead --env=cartpole --population=4 --progress_every=50

Flags -> `jaxmbrl.profiling.progress_overhead.OverheadConfig` -> `measure`. Prints the best
planned-trial time with and without callbacks (interleaved) and the overhead.
"""

from __future__ import annotations

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import runtime
from jaxmbrl.profiling import progress_overhead


def define_flags() -> None:
    _cli.define_flags(progress_overhead.OverheadConfig)
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(progress_overhead.OverheadConfig)
    logging.set_verbosity(logging.WARNING)
    runtime.enable_compilation_cache()
    r = progress_overhead.measure(config)
    print(
        f"{config.env}, {config.population} members x {r['trial_length']} steps, "
        f"{r['callbacks_per_trial']} callbacks per trial: best trial "
        f"{r['seconds_without'] * 1e3:.1f} ms without, {r['seconds_with'] * 1e3:.1f} ms with "
        f"callbacks: overhead {100 * r['overhead']:+.2f}%"
    )


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
