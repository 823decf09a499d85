r"""Environment throughput: MJX (jit + vmap + lax.scan) beside MuJoCo C on the same model.

  python -m benchmarks.env_throughput --env=half_cheetah --batch_sizes=1,16,128 --steps=100

Flags -> `jaxmbrl.profiling.env_throughput.EnvThroughputConfig` ->
`jaxmbrl.profiling.env_throughput.run`. Progress on stderr, the table on stdout, JSON in
DIR/env_throughput.json.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import runtime
from jaxmbrl.profiling import env_throughput


def define_flags() -> None:
    _cli.define_flags(env_throughput.EnvThroughputConfig)
    _cli.define_out("runs/env_throughput", "env_throughput.json")
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(env_throughput.EnvThroughputConfig)
    logging.set_verbosity(logging.WARNING)  # JAX's backend notes are not ours to print
    out = flags.FLAGS.out
    _cli.prepare_out(out)
    runtime.enable_compilation_cache()
    result = env_throughput.run(config, log=lambda line: print(line, file=sys.stderr))
    print(env_throughput.table(result))
    path = os.path.join(out, "env_throughput.json")
    runtime.write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
