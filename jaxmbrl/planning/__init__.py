"""Planning for PETS (Chua et al. 2018): padded CEM and trajectory-sampling costs."""

from jaxmbrl.planning.cem import (
    CEM,
    NONFINITE_COST,
    CEMConfig,
    CEMHParams,
    CostFn,
    SteppedCost,
    check_cem_hparams,
    default_cem_hparams,
    make_cem,
    planning_flops,
)
from jaxmbrl.planning.trajectory_sampling import (
    PROPAGATIONS,
    make_stepped_trajectory_cost,
    make_trajectory_steps,
)

__all__ = [
    "CEM",
    "NONFINITE_COST",
    "PROPAGATIONS",
    "CEMConfig",
    "CEMHParams",
    "CostFn",
    "SteppedCost",
    "check_cem_hparams",
    "default_cem_hparams",
    "make_cem",
    "make_stepped_trajectory_cost",
    "make_trajectory_steps",
    "planning_flops",
]
