r"""Where a planning step's time goes: the planner beside variants without one cost each.

  python -m benchmarks.planner_costs --env=half_cheetah --preset=paper

Prints, for one PETS planning step and its variants (no trajectory-sampling noise, a ReLU
model, both) and the ensemble's forward pass alone, the best time, FLOP/s and the ratio to
the float32 matmul measured interleaved in the same run (`jaxmbrl.planner_costs`).
"""

from __future__ import annotations

from absl import app, flags

from benchmarks import _cli
from jaxmbrl import envs, planner_costs
from jaxmbrl.agents import presets

_ENV = flags.DEFINE_enum("env", "half_cheetah", list(envs.ALL_ENVS), "Environment.")
_PRESET = flags.DEFINE_enum("preset", "paper", list(presets.PRESETS), "Model/planner sizes.")
_MIN_SECONDS = flags.DEFINE_float(
    "min_seconds", 2.0, "Timing budget per variant: calls repeat (at least 3), the best is kept."
)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_OUT = flags.DEFINE_string("out", None, "Optional JSON file.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    _cli.check(_MIN_SECONDS.value >= 0, f"--min_seconds={_MIN_SECONDS.value} must be >= 0")
    _cli.enable_compilation_cache()
    result = planner_costs.ablate(_ENV.value, _PRESET.value, _MIN_SECONDS.value, _SEED.value)
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
    if _OUT.value:
        _cli.write_json(_OUT.value, result)
        print(f"wrote {_OUT.value}")


if __name__ == "__main__":
    _cli.prefer_wide_vectors()  # before JAX initialises its backend
    app.run(main, flags_parser=_cli.parse_flags)
