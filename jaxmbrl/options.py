"""Options of a run as frozen dataclass fields that carry their own help, choices and bounds.

Each binary of the suite has one config dataclass (a tuning run, a throughput measurement,
...); its flags are generated from these fields (`benchmarks/_cli.define_flags`), so a
default, a help text or a set of valid choices is written once, here in the library.
`check_options` validates any such config with one line per bad value, naming the valid
choices or range, before anything compiles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


def option(
    default: Any,
    help: str,  # noqa: A002 - the flag's help text, as absl names it
    *,
    choices: Sequence[str] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """A dataclass field with its flag's help text, valid `choices` or closed range [low, high].

    Args:
      default: the field's (and the flag's) default.
      help: one-line help text of the flag.
      choices: valid string values (the flag becomes an enum).
      low: smallest valid value (numbers; for a tuple of numbers, every element).
      high: largest valid value.

    Returns:
      A `dataclasses.field`; tuple defaults are fine (they are immutable).
    """
    metadata = dict(help=help, choices=tuple(choices) if choices is not None else None)
    metadata.update(low=low, high=high)
    return dataclasses.field(default=default, metadata=metadata)


def check_options(config: Any) -> None:
    """Raises ValueError (one line) on the first field outside its choices or range."""
    for field in dataclasses.fields(config):
        value, meta = getattr(config, field.name), field.metadata
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"unknown {field.name} {value!r}; valid: {', '.join(choices)}")
        low, high = meta.get("low"), meta.get("high")
        values = value if isinstance(value, tuple) else (value,)
        if isinstance(value, tuple) and not value and low is not None:
            raise ValueError(f"{field.name}=() needs at least one value")
        for v in values:
            if v is None or isinstance(v, str):
                continue
            if (low is not None and not v >= low) or (high is not None and not v <= high):
                bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
                bounds = f"<= {high}" if low is None else bounds
                raise ValueError(f"{field.name}={value!r} must be {bounds}")
