r"""Runs (or resumes) the study of Zhang et al. (AISTATS 2021) and writes its report.

  python -m benchmarks.study --scale=ci --out=runs/study
  python -m benchmarks.study --scale=cpu --out=runs/study_cpu --tuners=random_search,pbt
  python -m benchmarks.study --scale=paper --envs=half_cheetah --seeds=0,1,2

Every tuner (random_search, hyperband, pbt, pbt_bt) and the default PETS run per env and seed
as ordinary tuning-run directories OUT/ENV/TUNER/seedK; the best results are replayed on
new seeds and envs (OUT/ENV/transfer/...); OUT/report.md, OUT/study.json and PNGs summarise
them. Re-running with the same --out skips finished runs and resumes unfinished ones; SIGTERM
or Ctrl-C stops the run in flight (see benchmarks/tune.py) and ends the study with status
143 / 130 and the command that resumes it.
Flags are generated from `jaxmbrl.experiments.study.StudyConfig`; any flag left unset takes
the value of --scale (ci: cartpole, tiny preset, a few minutes on 2 CPU cores; cpu: about an
hour on 2 cores; paper: the study's envs, sizes and budgets, for an accelerator).
"""

from __future__ import annotations

import dataclasses
import sys
import time

from benchmarks import _gl  # imports no mujoco

if __name__ == "__main__":  # before the imports below import mujoco (benchmarks._gl)
    _gl.choose_backend()

from absl import app, flags, logging  # noqa: E402

from benchmarks import _cli  # noqa: E402
from jaxmbrl import runtime  # noqa: E402
from jaxmbrl.analysis import study_publish, study_report  # noqa: E402
from jaxmbrl.experiments import study  # noqa: E402


def define_flags() -> None:
    _cli.define_flags(study.StudyConfig)
    for name in flags.FLAGS:  # the generated help shows the ci values
        if name in {f.name for f in dataclasses.fields(study.StudyConfig)} - {"scale"}:
            flags.FLAGS[name].help += " (unset: the --scale's value)"
    flags.adopt_module_key_flags(_cli)


def _overrides() -> dict:
    """The flags given on the command line, typed as the config's fields."""
    out = {}
    for field in dataclasses.fields(study.StudyConfig):
        holder = flags.FLAGS[field.name]
        if field.name == "scale" or not holder.present:
            continue
        base, is_tuple, _ = _cli._field_type(study.StudyConfig, field.name)
        value = holder.value
        if is_tuple:
            try:
                value = tuple(base(v) for v in value)
            except ValueError:
                _cli.usage_error(
                    f"--{field.name}={','.join(value)}: each value must be a {base.__name__}"
                )
        out[field.name] = value
    return out


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _cli.usage_error(f"unexpected arguments {argv[1:]}")
    try:
        config = study.make_config(flags.FLAGS.scale, **_overrides())
        study.check_plan(config, study.plan(config))
    except ValueError as error:
        _cli.usage_error(str(error))
    _cli.prepare_out(config.out)
    runtime.enable_compilation_cache()
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    with _cli.faults_exit():  # a signal stops the run in flight; a rerun resumes it
        try:
            manifest = study.run_study(config, log=log)
        except ValueError as error:
            _cli.usage_error(str(error))
    result = study_report.write_study(
        manifest,
        study.study_settings(config),
        time.perf_counter() - start,
        videos=config.videos,
        log=log,
    )
    for line in result["findings"]:
        print(line)
    print(f"report: {config.out}/report.md; {result['wall_seconds']:.0f} s wall")
    if config.publish:
        copied = study_publish.publish(config.out, config.publish)
        print(
            f"published {copied['files']} files ({copied['bytes'] / 1e6:.1f} MB) to "
            f"{config.publish}"
        )


if __name__ == "__main__":
    _cli.start()
    define_flags()
    app.run(main, flags_parser=_cli.parse_flags)
