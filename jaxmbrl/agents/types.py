"""Types of the PETS agent (Chua et al., NeurIPS 2018): static config, traced hyperparameters,
agent state, and the NamedTuple of pure functions `make_pets` returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax

from jaxmbrl import replay as replay_lib
from jaxmbrl.models import types as model_types
from jaxmbrl.planning import cem as cem_lib


@dataclasses.dataclass(frozen=True)
class PETSConfig:
    """Static settings: everything that fixes a shape or a program."""

    trial_length: int
    ensemble_size: int = 5
    num_elites: int = 5
    max_hidden_width: int = 200
    max_hidden_layers: int = 4
    max_epochs: int = 5
    train_batch_size: int = 32
    activation: str | None = "silu"  # None: traced categorical (tuned activation)
    tunable_architecture: bool = False  # True: width/depth traced, padded and masked
    model_forward_dtype: str = "float32"  # the planner's model matmuls: float32 | bfloat16
    max_horizon: int = 30
    max_population: int = 500
    max_iterations: int = 5
    # CEM candidates per cost evaluation (None: all at once); padded chunks are skipped.
    candidate_chunk: int | None = 100
    num_particles: int = 20
    propagation: str = "ts_inf"
    replay_capacity: int = 0  # 0: room for every trial of the run (set by the caller)
    progress_every: int = 0  # env steps between progress callbacks (0: none; see make_pets)


class PETSHParams(NamedTuple):
    """Traced, tunable hyperparameters of one agent."""

    model: model_types.ModelHParams
    planner: cem_lib.CEMHParams


class AgentState(NamedTuple):
    model: model_types.ModelState
    replay: replay_lib.ReplayBuffer
    trials: jax.Array  # int32 [], trials completed


Metrics = dict[str, jax.Array]


class InitFn(Protocol):
    def __call__(self, key: jax.Array, hparams: PETSHParams) -> AgentState:
        """A fresh agent: initial ensemble, empty replay buffer, no trials."""


class PlanFn(Protocol):
    def __call__(
        self,
        key: jax.Array,
        model_state: model_types.ModelState,
        obs: jax.Array,
        plan_init: jax.Array,
        hparams: PETSHParams,
    ) -> tuple[jax.Array, Metrics]:
        """One CEM optimisation from `plan_init` [max_horizon, A]: (plan, info)."""


class StepFn(Protocol):
    def __call__(
        self, key: jax.Array, state: AgentState, hparams: PETSHParams
    ) -> tuple[AgentState, Metrics]:
        """Advances an agent (a trial, a model fit, or both): (state, metrics)."""


class PETS(NamedTuple):
    config: PETSConfig
    env: Any
    ensemble: model_types.Ensemble
    cem: cem_lib.CEM
    default_hparams: PETSHParams
    init: InitFn
    plan: PlanFn
    run_trial: StepFn
    train_model: StepFn
    trial_and_train: StepFn
    # member_work(hparams) -> candidate-steps of one planning step (int32): what a population
    # sorts its members by before mapping them in groups.
    member_work: Callable[[PETSHParams], jax.Array]
