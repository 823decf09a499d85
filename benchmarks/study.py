r"""Runs (or resumes) the study of Zhang et al. (AISTATS 2021) and writes its report.

  python -m benchmarks.study --scale=ci --out=runs/study
  python -m benchmarks.study --scale=cpu --out=runs/study_cpu --tuners=random_search,pbt
  python -m benchmarks.study --scale=paper --envs=half_cheetah --seeds=0,1,2

Every tuner (random_search, hyperband, pbt, pbt_bt) and the default PETS run per env and seed
as ordinary tuning-run directories OUT/ENV/TUNER/seedK; the best results are replayed on
new seeds and envs (OUT/ENV/transfer/...); OUT/report.md, OUT/study.json and PNGs summarise
them. Re-running with the same --out skips finished runs and resumes unfinished ones.
Flags are generated from `jaxmbrl.experiments.study.StudyConfig`; any flag left unset takes
the value of --scale (ci: cartpole, tiny preset, a few minutes on 2 CPU cores; cpu: about an
hour on 2 cores; paper: the study's envs, sizes and budgets, for an accelerator).
"""

from __future__ import annotations

import dataclasses
import sys

from absl import app, flags, logging

from benchmarks import _cli
from jaxmbrl.experiments import study

_DEFINE = {
    "str": flags.DEFINE_string,
    "int": flags.DEFINE_integer,
    "float": flags.DEFINE_float,
    "tuple[str, ...]": flags.DEFINE_list,
    "tuple[int, ...]": flags.DEFINE_list,
}
_FIELDS = {f.name: f for f in dataclasses.fields(study.StudyConfig)}
for _name, _field in _FIELDS.items():
    _default = _field.default if _name == "scale" else None
    _help = _field.metadata.get("help", "")
    if _name != "scale":
        _help += " Default: the scale's."
    _DEFINE[_field.type](_name, _default, _help)


def _overrides() -> dict:
    out = {}
    for name, field in _FIELDS.items():
        if name == "scale" or not flags.FLAGS[name].present:
            continue
        value = flags.FLAGS[name].value
        if field.type == "tuple[int, ...]":
            try:
                value = tuple(int(v) for v in value)
            except ValueError:
                _cli.usage_error(f"--{name}={','.join(value)}: expected integers, e.g. 0,1,2")
        elif field.type == "tuple[str, ...]":
            value = tuple(value)
        out[name] = value
    return out


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    try:
        config = study.make_config(flags.FLAGS.scale, **_overrides())
        entries = study.plan(config)
        study.check_plan(config, entries)
    except ValueError as error:
        _cli.usage_error(str(error))
    _cli.enable_compilation_cache()
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        result = study.run_study(config, log=log)
    except ValueError as error:
        _cli.usage_error(str(error))
    for line in result["findings"]:
        print(line)
    print(f"report: {config.out}/report.md; {result['wall_seconds']:.0f} s wall")


if __name__ == "__main__":
    _cli.prefer_wide_vectors()  # before JAX initialises its backend
    app.run(main, flags_parser=_cli.parse_flags)
