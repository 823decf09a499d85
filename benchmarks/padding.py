r"""Padding of a PETS population's planner (Zhang et al., AISTATS 2021; issue 11).

  python -m benchmarks.padding --env=half_cheetah --preset=paper --out=runs/padding

Flags -> `jaxmbrl.profiling.padding.PaddingConfig` -> `jaxmbrl.profiling.padding.run`: the
padding share of a 40-member population from the planning space in the accelerator and CPU
defaults, one planning step timed per `candidate_chunk`, and the population step's program
compiled as one vmap, in sorted groups and one member at a time. Prints a table; writes
DIR/padding.json.
"""

from __future__ import annotations

import os

from absl import app, flags

from benchmarks import _cli
from jaxmbrl import runtime
from jaxmbrl.profiling import padding


def define_flags() -> None:
    _cli.define_flags(padding.PaddingConfig)
    _cli.define_out("runs/padding", "padding.json")
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(padding.PaddingConfig)
    out = flags.FLAGS.out
    _cli.prepare_out(out)
    runtime.enable_compilation_cache()
    result = padding.run(config)
    print(padding.table(result))
    path = os.path.join(out, "padding.json")
    runtime.write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
