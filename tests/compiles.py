"""Counting XLA compilations with `jax.log_compiles` (public API; no private cache sizes).

    with count_compiles() as compiled:
        f(x); f(x + 1)
    assert compiled.count("f") <= 1

Each jit compilation (a persistent-cache hit included: it is still a new executable for the
process) logs "Compiling jit(NAME) ..."; this collects the NAMEs.
"""

from __future__ import annotations

import contextlib
import logging
import re

import jax

_PATTERN = re.compile(r"Compiling (?:jit\()?([^\s)]+)")


class Compiles(list):
    def count(self, fn) -> int:  # type: ignore[override]
        """Compilations of `fn` (a jitted function, or a function's name)."""
        name = fn if isinstance(fn, str) else fn.__name__
        return sum(1 for n in self if n == name)

    def programs(self) -> list[str]:
        """The compiled programs, less single jax.lax / jax.numpy operations dispatched one
        at a time (host-side set-up of arrays: milliseconds, compiled once per process)."""
        return [n for n in self if not (hasattr(jax.lax, n) or hasattr(jax.numpy, n))]


class _Collector(logging.Handler):
    def __init__(self, names: Compiles):
        super().__init__(logging.DEBUG)
        self.names = names

    def emit(self, record: logging.LogRecord) -> None:
        match = _PATTERN.match(record.getMessage())
        if match:
            self.names.append(match.group(1))


@contextlib.contextmanager
def count_compiles():
    """Yields the list of names of the functions compiled inside the block."""
    names = Compiles()
    handler = _Collector(names)
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    # The global setting, not the thread-local `jax.log_compiles` context: a tuning run
    # compiles in a worker thread (experiments.faults: a signal abandons it at once).
    was = jax.config.jax_log_compiles
    jax.config.update("jax_log_compiles", True)
    try:
        yield names
    finally:
        jax.config.update("jax_log_compiles", was)
        logger.removeHandler(handler)
