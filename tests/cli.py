"""A binary of benchmarks/ run in the test's own process: its generated flags, parser and `main`.

A subprocess costs a Python start, JAX's import and (for a run) the compile of programs that
this process has already compiled. A bad flag's check is the binary's own code either way, so
the suite checks each bad value in-process through the binary's parser and `main`, and keeps
one subprocess per binary to prove the exit status and the single stderr line for real.

    result = cli.run("benchmarks.tune", "--population=0", "--out=/tmp/x")
    assert result.code == 2 and result.lines == ["tune.py: error: population=0 must be >= 1"]
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import subprocess
import sys
from typing import NamedTuple

from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Result(NamedTuple):
    code: int  # the exit status (0: `main` returned)
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """The non-blank lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def run(module: str, *argv: str) -> Result:
    """Runs `python -m module *argv` in this process, as its `__main__` block does (less
    `_cli.start()`, which only matters before JAX's backend exists); returns its exit status
    and what it wrote. The module's flags are removed again afterwards."""
    binary = importlib.import_module(module)
    defined = set(flags.FLAGS)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        binary.define_flags()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                from benchmarks import _cli

                binary.main(_cli.parse_flags([binary.__file__, *argv]))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        for name in set(flags.FLAGS) - defined:
            delattr(flags.FLAGS, name)
    return Result(code, stdout.getvalue(), stderr.getvalue())


def subprocess_run(module: str, *argv: str, env=None, timeout=600) -> Result:
    """`python -m module *argv` in a new process from the repository root."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
