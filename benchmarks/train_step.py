r"""One gradient step of the PETS model's training against a bare jitted adam step.

  python -m benchmarks.train_step            # the paper's cheetah model, 5 x 4 x 200, batch 32
  python -m benchmarks.train_step --rounds=7 --out=runs/train_step

Flags -> `jaxmbrl.profiling.train_step.TrainStepConfig` -> `measure`. Prints each round's
marginal microseconds per gradient step of both and their ratio (issue 20: within 1.2x);
writes DIR/train_step.json.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import runtime
from jaxmbrl.profiling import train_step


def define_flags() -> None:
    _cli.define_flags(train_step.TrainStepConfig)
    _cli.define_out("runs/train_step", "train_step.json")
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(train_step.TrainStepConfig)
    logging.set_verbosity(logging.WARNING)
    out = flags.FLAGS.out
    _cli.prepare_out(out)
    runtime.enable_compilation_cache()
    r = train_step.measure(config)
    print(
        f"model {config.ensemble_size} x {config.hidden_layers} x {config.hidden_width}, "
        f"batch {config.batch_size}: {r['steps_high'] - r['steps_low']} gradient steps "
        f"between {config.epochs_low} and {config.epochs_high} epochs"
    )
    for i, row in enumerate(r["rounds"]):
        print(
            f"round {i}: train {row['train_s'] * 1e6:.0f} us/step, "
            f"bare adam {row['bare_s'] * 1e6:.0f} us/step, ratio {row['ratio']:.3f}"
        )
    print(
        f"median: train {r['train_s'] * 1e6:.0f} us, bare {r['bare_s'] * 1e6:.0f} us, "
        f"ratio {r['ratio']:.3f} [{r['ratio_min']:.3f}, {r['ratio_max']:.3f}]"
    )
    path = os.path.join(out, "train_step.json")
    runtime.write_json(path, r)
    print(f"wrote {path}")


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
