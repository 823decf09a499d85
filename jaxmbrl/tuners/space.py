"""Search spaces in the unit cube, and the PETS search space of Zhang et al. (AISTATS 2021).

Every tuner works on hyperparameters normalised to [0, 1]^D (as ConfigSpace's vector form,
which the study's code used): PBT's explore step `v * (1 +- 0.2)` is taken in this unit cube.
`SearchSpace.from_unit` maps unit vectors to values inside jit:
  * Float: linear or log interpolation between `low` and `high`;
  * Int: the same on [low - 0.5, high + 0.5], then rounded, so every integer gets an equal
    share of the cube (in log space for log scale); `to_unit` maps an integer to the point of
    its own bin, so `from_unit(to_unit(x)) == x`;
  * Categorical: k equal bins, returned as an int32 index; `to_unit` gives the bin centre.
A parameter without a default has its default at u = 0.5 (the geometric mean for log scale).

The study's PETS table (halfcheetah; pusher/reacher use plan_hor 5-40) is `get_space(name)`,
see shared/reference/hpo_for_mbrl.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np


def _check_range(name: str, low: float, high: float, log: bool, default: Any) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(f"{name}: bounds low={low}, high={high} invalid; need finite low < high")
    if log and low <= 0:
        raise ValueError(f"{name}: log scale needs low > 0, got low={low}")
    if default is not None and not low <= default <= high:
        raise ValueError(f"{name}: default={default} outside the range [{low}, {high}]")


@dataclasses.dataclass(frozen=True)
class Float:
    """A real hyperparameter in [low, high], uniform in linear or log space."""

    name: str
    low: float
    high: float
    log: bool = False
    default: float | None = None

    def __post_init__(self):
        _check_range(self.name, self.low, self.high, self.log, self.default)

    def _edges(self) -> tuple[float, float]:
        lo, hi = float(self.low), float(self.high)
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def from_unit(self, u: jax.Array) -> jax.Array:
        a, b = self._edges()
        x = a + jnp.clip(u, 0.0, 1.0) * (b - a)
        x = jnp.exp(x) if self.log else x
        return jnp.clip(x, self.low, self.high).astype(jnp.float32)

    def to_unit(self, x: Any) -> jax.Array:
        a, b = self._edges()
        x = jnp.asarray(x, jnp.float32)
        x = jnp.log(x) if self.log else x
        return jnp.clip((x - a) / (b - a), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Int:
    """An integer hyperparameter in [low, high] (inclusive), uniform in linear or log space."""

    name: str
    low: int
    high: int
    log: bool = False
    default: int | None = None

    def __post_init__(self):
        for field in ("low", "high", "default"):
            v = getattr(self, field)
            if v is not None and int(v) != v:
                raise ValueError(f"{self.name}: {field}={v} must be an integer")
        _check_range(self.name, self.low, self.high, self.log, self.default)

    def _edges(self) -> tuple[float, float]:
        lo, hi = self.low - 0.5, self.high + 0.5  # each integer owns a bin of width 1
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def from_unit(self, u: jax.Array) -> jax.Array:
        a, b = self._edges()
        x = a + jnp.clip(u, 0.0, 1.0) * (b - a)
        x = jnp.exp(x) if self.log else x
        return jnp.clip(jnp.round(x), self.low, self.high).astype(jnp.int32)

    def to_unit(self, x: Any) -> jax.Array:
        a, b = self._edges()
        x = jnp.asarray(x, jnp.float32)
        x = jnp.log(x) if self.log else x
        return jnp.clip((x - a) / (b - a), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Categorical:
    """A categorical hyperparameter: `from_unit` gives the int32 index into `choices`."""

    name: str
    choices: tuple
    default: Any = None

    def __post_init__(self):
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError(f"{self.name}: choices must be non-empty")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"{self.name}: choices {self.choices} contain duplicates")
        if self.default is not None and self.default not in self.choices:
            raise ValueError(f"{self.name}: default={self.default!r} not in {self.choices}")

    def from_unit(self, u: jax.Array) -> jax.Array:
        k = len(self.choices)
        return jnp.clip(jnp.floor(u * k), 0, k - 1).astype(jnp.int32)

    def to_unit(self, x: Any) -> jax.Array:
        if isinstance(x, str):
            x = self.choices.index(x)
        return (jnp.asarray(x, jnp.float32) + 0.5) / len(self.choices)


Param = Float | Int | Categorical


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """An ordered tuple of hyperparameters; unit vectors are [..., D] in that order."""

    params: tuple

    def __post_init__(self):
        object.__setattr__(self, "params", tuple(self.params))
        if not self.params:
            raise ValueError("SearchSpace needs at least one hyperparameter")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate hyperparameter names in {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def dim(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{name!r} not in search space; valid: {', '.join(self.names)}")

    def sample_unit(self, key: jax.Array, n: int) -> jax.Array:
        """n independent uniform samples from the prior, [n, D] float32."""
        return jax.random.uniform(key, (n, self.dim), jnp.float32)

    def default_unit(self, n: int | None = None) -> jax.Array:
        """The defaults as a unit vector [D] (or [n, D]); no default means u = 0.5."""
        u = jnp.stack(
            [jnp.float32(0.5) if p.default is None else p.to_unit(p.default) for p in self.params]
        )
        return u if n is None else jnp.broadcast_to(u, (n, self.dim))

    def from_unit(self, u: jax.Array) -> dict[str, jax.Array]:
        """Unit vectors [..., D] -> dict name -> values [...] (jittable)."""
        chex.assert_axis_dimension(u, -1, self.dim)
        return {p.name: p.from_unit(u[..., i]) for i, p in enumerate(self.params)}

    def to_unit(self, values: Mapping[str, Any]) -> jax.Array:
        """dict name -> values [...] -> unit vectors [..., D]; categoricals by index or name."""
        missing = set(self.names) - set(values)
        if missing:
            raise ValueError(f"values lack {sorted(missing)}; need all of {', '.join(self.names)}")
        return jnp.stack([p.to_unit(values[p.name]) for p in self.params], axis=-1)

    def to_dicts(self, u: Any) -> list[dict[str, Any]]:
        """Host-side: unit vectors [n, D] -> list of dicts of Python values (choices by name)."""
        vals = {
            k: np.asarray(v)
            for k, v in self.from_unit(jnp.asarray(u).reshape(-1, self.dim)).items()
        }
        rows = []
        for i in range(len(next(iter(vals.values())))):
            row = {}
            for p in self.params:
                v = vals[p.name][i]
                row[p.name] = p.choices[int(v)] if isinstance(p, Categorical) else v.item()
            rows.append(row)
        return rows

    def perturb(
        self,
        key: jax.Array,
        u: jax.Array,
        factors: Sequence[float] = (0.8, 1.2),
        resample_probability: float | jax.Array = 0.0,
        per_param: bool = False,
    ) -> jax.Array:
        """PBT's explore step in the unit cube: each coordinate times a random factor, clipped.

        Args:
          key: PRNG key.
          u: unit vectors [..., D].
          factors: multiplicative factors chosen uniformly per coordinate (study: 1 +- 0.2).
          resample_probability: probability of resampling from the prior instead.
          per_param: False (the study): with that probability a whole vector is resampled;
            True (Ray Tune): each coordinate is resampled independently.

        Returns:
          Perturbed unit vectors, same shape, in [0, 1].
        """
        k_factor, k_coin, k_new = jax.random.split(key, 3)
        fac = jnp.asarray(factors, jnp.float32)
        choice = jax.random.randint(k_factor, u.shape, 0, fac.shape[0])
        del k_factor
        moved = jnp.clip(u * fac[choice], 0.0, 1.0)
        coin_shape = u.shape if per_param else u.shape[:-1] + (1,)
        resample = jax.random.uniform(k_coin, coin_shape) < resample_probability
        fresh = jax.random.uniform(k_new, u.shape, jnp.float32)
        return jnp.where(resample, fresh, moved)


# The study's PETS search space (halfcheetah), shared/reference/hpo_for_mbrl.md.
_STATIC = (
    Int("num_hidden_layers", 2, 8, default=4),
    Int("hidden_layer_width", 100, 600, default=200),
    Categorical("activation", ("relu", "tanh", "sigmoid", "swish"), default="swish"),
)
_MODEL = (
    Float("model_learning_rate", 1e-5, 4e-2, log=True, default=1e-3),
    Float("model_weight_decay", 1e-7, 1e-1, log=True, default=7.5e-5),
    Int("model_train_epoch", 3, 20, default=5),
)


def _planning(env: str | None) -> tuple:
    short = env in ("pusher", "reacher")  # the study's pusher/reacher horizon range
    return (
        Int("num_cem_iters", 3, 8, default=5),
        Int("cem_popsize", 200, 700, log=True, default=500),
        Float("cem_alpha", 0.05, 0.2, default=0.1),
        Float("cem_elites_ratio", 0.04, 0.5, log=True, default=0.1),
        Int("plan_hor", 5, 40 if short else 60, default=25 if short else 30),
    )


SPACE_NAMES = ("model", "planning", "static", "all")


def get_space(name: str, env: str | None = None) -> SearchSpace:
    """The study's PETS search space for one hyperparameter group.

    Args:
      name: 'model' (lr, weight decay, epochs), 'planning' (CEM iterations, population,
        alpha, elite ratio, horizon), 'static' (architecture) or 'all' (all of them).
      env: environment name; 'pusher' and 'reacher' get plan_hor 5-40 (default 25).

    Returns:
      The SearchSpace.
    """
    if name not in SPACE_NAMES:
        raise ValueError(f"unknown search space {name!r}; valid: {', '.join(SPACE_NAMES)}")
    groups = {
        "model": _MODEL,
        "planning": _planning(env),
        "static": _STATIC,
        "all": _STATIC + _MODEL + _planning(env),
    }
    return SearchSpace(groups[name])
