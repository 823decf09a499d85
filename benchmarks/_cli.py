"""Shared plumbing of the binaries: flags generated from a config dataclass, one-line errors.

Each binary has one config dataclass in the library (fields made with
`jaxmbrl.options.option`: default, help, choices, bounds). `define_flags(Config)` defines one
absl flag per field and `config_from_flags(Config)` builds the config back, so a default is
written once. Every bad flag value is one line on stderr and exit status 2, before anything
compiles (absl's own default is a usage dump and status 1). `prepare_out` takes the run
directory's lock before anything compiles; `faults_exit` ends a binary whose run was stopped
by a signal (one line with the resume command, status 128 + signal) or by a failed write
(one line, status 1).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shlex
import sys
import types
import typing
from collections.abc import Iterator
from typing import Any, NoReturn

from absl import flags

from jaxmbrl import runtime
from jaxmbrl.experiments import faults, rundir


def parse_flags(argv: list[str]) -> list[str]:
    """absl flags parser for `app.run(main, flags_parser=parse_flags)` (errors: exit 2)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        usage_error(str(error), argv[0])


def usage_error(message: str, program: str | None = None) -> NoReturn:
    program = os.path.basename(program or sys.argv[0])
    sys.stderr.write(f"{program}: error: {message}\n")
    sys.exit(2)


def check(condition: bool, message: str) -> None:
    if not condition:
        usage_error(message)


def _field_type(config_cls: type, name: str) -> tuple[type, bool, bool]:
    """(base type, is a tuple of it, may be None) of a config field's annotation."""
    hint = typing.get_type_hints(config_cls)[name]
    optional = False
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        (hint,) = [a for a in args if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True, optional
    return hint, False, optional


def define_flags(config_cls: type) -> None:
    """Defines one absl flag per field of the dataclass `config_cls` (name, default, help)."""
    for field in dataclasses.fields(config_cls):
        base, is_tuple, _ = _field_type(config_cls, field.name)
        meta, default = field.metadata, field.default
        help_text = meta.get("help") or field.name
        if is_tuple:
            flags.DEFINE_list(field.name, [str(v) for v in default], help_text)
        elif meta.get("choices"):
            flags.DEFINE_enum(field.name, default, list(meta["choices"]), help_text)
        elif base is bool:
            flags.DEFINE_bool(field.name, default, help_text)
        elif base is int:
            flags.DEFINE_integer(field.name, default, help_text)
        elif base is float:
            flags.DEFINE_float(field.name, default, help_text)
        else:
            flags.DEFINE_string(field.name, default, help_text)


def config_from_flags(config_cls: type) -> Any:
    """The config built from the parsed flags and validated; a bad value exits 2."""
    values = {}
    for field in dataclasses.fields(config_cls):
        base, is_tuple, _ = _field_type(config_cls, field.name)
        value = flags.FLAGS[field.name].value
        if is_tuple:
            try:
                value = tuple(base(v) for v in value)
            except ValueError:
                usage_error(
                    f"--{field.name}={','.join(value)}: each value must be a {base.__name__}"
                )
        values[field.name] = value
    config = config_cls(**values)
    try:
        config.validate()
    except ValueError as error:
        usage_error(str(error))
    return config


def define_out(default: str, what: str) -> flags.FlagHolder:
    """The `--out` flag: a directory (created if missing) that receives `what`."""
    return flags.DEFINE_string("out", default, f"Output directory: {what}.")


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def prepare_out(
    out_dir: str, settings: dict[str, Any] | None = None, lock: bool = True
) -> None:
    """Checks `--out` before anything compiles: a writable directory, not a file, not in use
    by another live process (with `lock`, this process takes the directory's lock and holds
    it until it exits; a multi-process run's other processes pass lock=False: process 0
    holds it for all), and (with `settings`) not one that holds a run with other settings.
    Exit 2 otherwise."""
    try:
        rundir.prepare_out_dir(out_dir)
        if lock:
            faults.RunLock(out_dir, log=_warn).acquire()
            atexit.register(faults.release_all)
        if settings is not None:
            rundir.check_settings(out_dir, settings)
    except ValueError as error:
        usage_error(str(error))
    except faults.WriteError as error:
        usage_error(str(error))


def resume_command() -> str:
    """The command line that resumes this binary's run (the module form of argv[0])."""
    module = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    args = [a for a in sys.argv[1:] if a not in ("--noresume", "--resume=false")]
    return shlex.join(["python", "-m", f"benchmarks.{module}", *args])


@contextlib.contextmanager
def faults_exit() -> Iterator[None]:
    """Ends the binary with one line when its run stops on a signal or a failed write."""
    program = os.path.basename(sys.argv[0])
    try:
        yield
    except faults.Interrupted as stop:
        sys.stdout.flush()
        sys.stderr.write(f"{program}: {stop.message}; resume: {resume_command()}\n")
        sys.stderr.flush()
        faults.release_all()
        # Not sys.exit: an abandoned compiled trial may still run in a helper thread.
        os._exit(stop.exit_status)
    except faults.WriteError as error:
        sys.stderr.write(
            f"{program}: error: {error}; the last checkpoint and its records are intact: "
            "free space or fix permissions, then rerun to resume\n"
        )
        sys.exit(1)


def start() -> None:
    """First thing in a binary: 512-bit vectors on AVX-512 hosts, before JAX's backend;
    threefry unrolled on the CPU."""
    runtime.prefer_wide_vectors()
    runtime.unroll_threefry()
