"""A population's members over devices and hosts: one mesh axis, `shard_map`ped trials.

Zhang et al. (AISTATS 2021) ran their population as 40 TensorFlow workers under Slurm. Here
the member axis of the population state is sharded over a 1-D `jax.sharding.Mesh` (axis
`members`) of every device of every process: each device holds its N/D members and runs
their trials as a `shard_map` of the population's own per-member map (a `lax.map` or `vmap`
over its local members). Everything else stays an ordinary jit over the sharded arrays: the
member keys are split from one key before the shard_map (so they do not depend on D), and
the tuner's update and exploit (a gather across members) get their collectives from XLA.
The tuner state, RNG key and counters are small and replicated, so every process reads the
same decisions and metrics.

Several processes (one per host, or per GPU) join through `jax.distributed.initialize`:
cluster auto-detection (Slurm, Open MPI, cloud TPU) or an explicit coordinator address. Each
process calls the same programs on its own devices; orbax writes every process's shards of a
checkpoint; only process 0 writes records, summaries and plots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmbrl import population as population_lib

AXIS = "members"


def initialize(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1):
    """Joins a multi-process run before anything touches a device; '' is a single process.

    Args:
      coordinator_address: '' (one process), 'auto' (JAX's cluster auto-detection, e.g.
        under Slurm) or 'HOST:PORT' of process 0's coordinator service.
      num_processes: processes in the run (0: auto-detected).
      process_id: this process's index (-1: auto-detected).
    """
    if not coordinator_address or jax.distributed.is_initialized():
        return
    # CPU devices of different processes talk through gloo (XLA:CPU has no other
    # collectives); GPUs and TPUs ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            coordinator_address,
            num_processes=num_processes or None,
            process_id=None if process_id < 0 else process_id,
        )


def is_primary() -> bool:
    """Whether this process writes records, summaries and plots (process 0)."""
    return jax.process_index() == 0


def make_mesh(devices: int = 0) -> Mesh:
    """A 1-D mesh (axis `members`) of the first `devices` global devices (0: all).

    Raises:
      ValueError: one line, when more devices are asked for than exist, or fewer than all
        in a multi-process run (every process must hold a part of the members).
    """
    available = jax.devices()
    if devices < 0 or devices > len(available):
        raise ValueError(f"devices={devices} must be in [0, {len(available)}] (0: all)")
    if devices and devices != len(available) and jax.process_count() > 1:
        raise ValueError(
            f"devices={devices}: a run of {jax.process_count()} processes uses all "
            f"{len(available)} devices (devices=0 or {len(available)})"
        )
    return Mesh(np.asarray(available[: devices or len(available)]), (AXIS,))


def check_population(population: int, mesh: Mesh) -> None:
    """ValueError (one line) unless the members divide evenly over the mesh's devices."""
    d = mesh.size
    if population % d:
        valid = [k for k in range(1, len(jax.devices()) + 1) if population % k == 0]
        raise ValueError(
            f"population={population} does not divide over devices={d}: use a population "
            f"that is a multiple of {d}, or devices in {valid}"
        )


def shard_members(mesh: Mesh) -> Callable[[Callable], Callable]:
    """`make_population(distribute=...)`: a mapped per-member function, run per device.

    Every argument and result of `mapped` has the member axis first; it is split over the
    mesh and each device runs `mapped` on its own members (`map_members` one at a time, in
    groups sorted by work, or one vmap, as the population was built).
    """
    spec = P(AXIS)

    def wrap(mapped: Callable) -> Callable:
        # check_vma off: every input and output is split over `members`, nothing replicated
        # is claimed, and the check rejects some while-loop carries of MJX and CEM.
        return jax.shard_map(mapped, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)

    return wrap


def member_map(mesh: Mesh, member_batch: int | None) -> Callable[[Callable], Callable]:
    """`fn` mapped over the members (`map_members`), each device mapping its own."""
    shard = shard_members(mesh)
    return lambda fn: shard(population_lib.map_members(fn, member_batch))


def members_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def population_shardings(state: population_lib.PopulationState, mesh: Mesh) -> Any:
    """Shardings of a population state: members and hyperparameters split, key replicated."""
    split, rep = members_sharding(mesh), replicated(mesh)
    return population_lib.PopulationState(
        members=jax.tree.map(lambda _: split, state.members),
        hparams=jax.tree.map(lambda _: split, state.hparams),
        key=rep,
    )


def to_global(value: Any, sharding: NamedSharding) -> jax.Array:
    """A host value (the same on every process) as a global array with `sharding`."""
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def local_members(mesh: Mesh, population: int) -> np.ndarray:
    """Which of the members live on this process's devices (bool [population])."""
    mask = np.zeros(population, bool)
    for index in members_sharding(mesh).addressable_devices_indices_map((population,)).values():
        mask[index[0]] = True
    return mask


def member_devices(state: population_lib.PopulationState) -> list[list[int]]:
    """For each member, the ids of the devices that hold a part of it (all its leaves)."""
    leaves = jax.tree.leaves((state.members, state.hparams))
    n = leaves[0].shape[0]
    held: list[set[int]] = [set() for _ in range(n)]
    for leaf in leaves:
        for device, index in leaf.sharding.devices_indices_map(leaf.shape).items():
            for i in range(n)[index[0]] if index else range(n):
                held[i].add(device.id)
    return [sorted(ids) for ids in held]


def placement(state: population_lib.PopulationState, mesh: Mesh) -> dict[str, Any]:
    """Where a run's members live (JSON-able; written into `summary.json`)."""
    return dict(
        devices=mesh.size,
        processes=jax.process_count(),
        platform=mesh.devices.flat[0].platform,
        member_devices=member_devices(state),
    )
