r"""Population-throughput profiler of a vmapped PETS population (Zhang et al., AISTATS 2021).

  python -m benchmarks.throughput --env=cartpole --preset=tiny --population=1,2,4,8 \
      --out=/tmp/throughput.json
  python -m benchmarks.throughput --env=half_cheetah --preset=paper --population=1,2 \
      --steps=2 --out=/tmp/throughput_paper.json

Flags -> `jaxmbrl.throughput.ThroughputConfig` -> `jaxmbrl.throughput.run` (what is measured
is documented there). Prints a table, writes JSON (--out) and a PNG (--plot).
"""

from __future__ import annotations

import os

from absl import app, flags

from benchmarks import _cli
from jaxmbrl import envs
from jaxmbrl.agents import presets
from jaxmbrl.analysis import throughput_plot
from jaxmbrl.throughput import ThroughputConfig, run


def define_flags() -> None:
    """Defined only when run as a program, so tests can import this module."""
    flags.DEFINE_enum("env", "cartpole", list(envs.ALL_ENVS), "Environment.")
    flags.DEFINE_list("population", ["1", "2", "4", "8"], "Population sizes to measure.")
    flags.DEFINE_enum("preset", "tiny", list(presets.PRESETS), "Model/planner sizes.")
    flags.DEFINE_integer(
        "steps",
        0,
        "Env steps per timed trial (0: 25 for tiny, 2 for paper: a paper-size planning "
        "step costs seconds per member on a CPU).",
    )
    flags.DEFINE_integer("train_rows", 2000, "Replay rows for the model-training measurement.")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    flags.DEFINE_float(
        "min_seconds", 1.0, "Timing budget per measurement: fast calls repeat, the best is kept."
    )
    flags.DEFINE_integer(
        "member_batch",
        0,
        "Members per vmap: k runs groups of k in a lax.map (k >= population: one vmap of "
        "all); 0: auto, one at a time on CPU, all at once on an accelerator.",
    )
    flags.DEFINE_string("out", "throughput.json", "Output JSON file.")
    flags.DEFINE_string("plot", None, "Output PNG (default: --out with .png).")
    flags.DEFINE_string("profile", None, "Directory for a jax.profiler trace of one step.")


def main(argv: list[str]) -> None:
    f = flags.FLAGS
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    try:
        populations = tuple(int(s) for s in f.population)
    except ValueError:
        _cli.usage_error(f"--population={','.join(f.population)} must be integers, e.g. 1,2,4")
    config = ThroughputConfig(
        env=f.env,
        populations=populations,
        preset=f.preset,
        steps=f.steps,
        train_rows=f.train_rows,
        seed=f.seed,
        profile_dir=f.profile,
        min_seconds=f.min_seconds,
        member_batch=f.member_batch,
    )
    plot_path = f.plot or os.path.splitext(f.out)[0] + ".png"
    try:
        config.validate()
        for path in (f.out, plot_path):
            folder = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as error:
                raise ValueError(f"cannot write {path}: {error.strerror}") from None
            if not os.access(folder, os.W_OK):
                raise ValueError(f"cannot write {path}: {folder} is not writable")
    except ValueError as error:
        _cli.usage_error(str(error))
    _cli.enable_compilation_cache()
    result = run(config)
    _cli.write_json(f.out, result)
    throughput_plot.plot(result, plot_path)
    print(throughput_plot.table(result))
    print(f"wrote {f.out} and {plot_path}")


if __name__ == "__main__":
    _cli.prefer_wide_vectors()  # before JAX initialises its backend
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
