"""Search spaces and population tuners of Zhang et al. (AISTATS 2021).

Random search, Hyperband (Li et al. 2018), PBT (Jaderberg et al. 2017) and PBT with
backtracking, plus PB2 (Parker-Holder et al. 2020) and BOHB (Falkner et al. 2018), as
optax-style factories of pure, jittable functions over N slots.
"""

from jaxmbrl.tuners.base import (
    Decision,
    Tuner,
    apply_decision,
    fitness_from_returns,
    rank_fitness,
    sanitize_fitness,
)
from jaxmbrl.tuners.bohb import BOHBConfig, bohb, bohb_config
from jaxmbrl.tuners.hyperband import (
    HyperbandState,
    brackets,
    history,
    hyperband,
    incumbent,
    is_done,
)
from jaxmbrl.tuners.pb2 import PB2Config, PB2State, pb2, pb2_config
from jaxmbrl.tuners.pbt import PBTConfig, PBTState, pbt, pbt_config, quantile_counts
from jaxmbrl.tuners.pbt_bt import Archive, PBTBTState, pbt_bt
from jaxmbrl.tuners.random_search import RandomSearchState, random_search
from jaxmbrl.tuners.schedule import (
    ReplayState,
    ReplayTable,
    hparams_schedule,
    lineage,
    make_schedule_replay,
    record,
    replay_table,
    stack_decisions,
)
from jaxmbrl.tuners.space import (
    SPACE_NAMES,
    Categorical,
    Float,
    Int,
    SearchSpace,
    get_space,
)

# The one registry of tuners: name -> factory(space, population_size, **settings) -> Tuner.
# Binaries and the experiment runner take their choices from here.
REGISTRY = {
    "random_search": random_search,
    "hyperband": hyperband,
    "pbt": pbt,
    "pbt_bt": pbt_bt,
    "pb2": pb2,
    "bohb": bohb,
}
TUNERS = tuple(REGISTRY)

__all__ = [
    "REGISTRY",
    "BOHBConfig",
    "PB2Config",
    "PB2State",
    "SPACE_NAMES",
    "TUNERS",
    "Archive",
    "Categorical",
    "Decision",
    "Float",
    "HyperbandState",
    "Int",
    "PBTBTState",
    "PBTConfig",
    "PBTState",
    "RandomSearchState",
    "ReplayState",
    "ReplayTable",
    "SearchSpace",
    "Tuner",
    "apply_decision",
    "bohb",
    "bohb_config",
    "brackets",
    "fitness_from_returns",
    "get_space",
    "history",
    "hparams_schedule",
    "hyperband",
    "incumbent",
    "is_done",
    "lineage",
    "make_schedule_replay",
    "pb2",
    "pb2_config",
    "pbt",
    "pbt_bt",
    "pbt_config",
    "quantile_counts",
    "random_search",
    "rank_fitness",
    "record",
    "replay_table",
    "sanitize_fitness",
    "stack_decisions",
]
