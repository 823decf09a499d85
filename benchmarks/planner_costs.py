r"""Where a planning step's time goes: the planner beside variants without one cost each.

  python -m benchmarks.planner_costs --env=half_cheetah --preset=paper --out=runs/planner_costs

Prints, for one PETS planning step and its variants (no trajectory-sampling noise, a ReLU
model, both) and the ensemble's forward pass alone, the best time, FLOP/s and the ratio to
the float32 matmul measured interleaved in the same run (`jaxmbrl.profiling.planner_costs`);
writes DIR/planner_costs.json.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl import runtime
from jaxmbrl.profiling import planner_costs


def define_flags() -> None:
    _cli.define_flags(planner_costs.PlannerCostsConfig)
    _cli.define_out("runs/planner_costs", "planner_costs.json")
    flags.adopt_module_key_flags(_cli)  # --help lists the generated flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    config = _cli.config_from_flags(planner_costs.PlannerCostsConfig)
    logging.set_verbosity(logging.WARNING)  # JAX's backend notes are not ours to print
    out = flags.FLAGS.out
    _cli.prepare_out(out)
    runtime.enable_compilation_cache()
    result = planner_costs.ablate(config.env, config.preset, config.min_seconds, config.seed)
    timings = result["timings"]
    planner_seconds = timings["planner"]["seconds"]
    print(f"{'variant':>22} {'ms':>9} {'GFLOP/s':>9} {'roofline':>9} {'per CPU-s':>9} {'time':>6}")
    for name, t in timings.items():
        print(
            f"{name:>22} {1e3 * t['seconds']:9.1f} {t['flops_per_second'] / 1e9:9.1f} "
            f"{t['roofline_ratio']:9.2f} {t['roofline_ratio_cpu']:9.2f} "
            f"{t['seconds'] / planner_seconds:6.2f}"
        )
    matmul = next(iter(timings.values()))["matmul_flops_per_second"]
    print(f"matmul 2048^3 float32: best {matmul / 1e9:.1f} GFLOP/s, interleaved with the above")
    path = os.path.join(out, "planner_costs.json")
    runtime.write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
