"""Pure-JAX forward kinematics of a serial hinge chain, read from an MjModel.

PETS (Chua et al., NeurIPS 2018) scores its 7-DoF reacher on the end-effector position,
which the planner must compute from *predicted* joint angles, so it cannot call MuJoCo.
PETS hand-wrote that arm's kinematics; here the chain's constants (body offsets, joint
axes) are read from the compiled model once, so the reward's kinematics is the
simulator's by construction and tests compare it with MuJoCo's own ``xpos``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.envs._mjx import mujoco


class Chain(NamedTuple):
    """A serial chain: body b sits at ``offsets[b]`` in its parent's frame, then turns by
    ``qpos[qpos_index[b]]`` about ``axes[b]`` (index -1: no joint); ``point`` is the
    tracked point in the last body's frame."""

    offsets: np.ndarray  # [n, 3]
    axes: np.ndarray  # [n, 3]
    qpos_index: tuple[int, ...]  # [n]
    point: np.ndarray  # [3]


def _body(m: mujoco.MjModel, name: str) -> int:
    body_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
    if body_id < 0:
        raise ValueError(f"no body {name!r} in the model")
    return body_id


def _path(m: mujoco.MjModel, ancestor: int, body: int) -> list[int]:
    """Bodies from just below ``ancestor`` down to ``body`` (inclusive)."""
    path = []
    while body != ancestor:
        if body == 0:
            raise ValueError("body is not below the given ancestor")
        path.append(body)
        body = int(m.body_parentid[body])
    return path[::-1]


def _check_frames(m: mujoco.MjModel, bodies: Sequence[int]) -> None:
    # The chain arithmetic assumes unrotated body frames and at most one hinge at the origin.
    for b in bodies:
        if not np.allclose(m.body_quat[b], [1, 0, 0, 0]):
            raise ValueError(f"body {b} is rotated; Chain supports unrotated frames only")
        joints = range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b])
        if m.body_jntnum[b] > 1 or any(
            m.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE or np.any(m.jnt_pos[j] != 0)
            for j in joints
        ):
            raise ValueError(f"body {b}: Chain supports one hinge at the body origin")


def make_chain(m: mujoco.MjModel, last_body: str, points: Sequence[str]) -> Chain:
    """The chain from the world to ``last_body``; the point is the mean of ``points``' origins.

    Args:
      m: compiled model.
      last_body: the last body of the chain (its ancestors up to the world form the chain).
      points: bodies fixed to ``last_body`` (no joints) whose origins' mean is tracked.
    """
    last = _body(m, last_body)
    chain = _path(m, 0, last)
    _check_frames(m, chain)
    offsets = np.array([m.body_pos[b] for b in chain])
    axes = np.zeros((len(chain), 3))
    qpos_index = []
    for i, b in enumerate(chain):
        if m.body_jntnum[b]:
            j = m.body_jntadr[b]
            axes[i] = m.jnt_axis[j]
            qpos_index.append(int(m.jnt_qposadr[j]))
        else:
            qpos_index.append(-1)
    local = []
    for name in points:
        tail = _path(m, last, _body(m, name))
        _check_frames(m, tail)
        if any(m.body_jntnum[b] for b in tail):
            raise ValueError(f"{name!r} moves relative to {last_body!r}")
        local.append(np.sum([m.body_pos[b] for b in tail], axis=0))
    return Chain(offsets, axes, tuple(qpos_index), np.mean(local, axis=0))


def _rotation(axis: np.ndarray, angle: jax.Array) -> jax.Array:
    """Rodrigues' formula for a fixed unit axis: [...] angles -> [..., 3, 3]."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = jnp.sin(angle)[..., None, None], jnp.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def forward_kinematics(chain: Chain, qpos: jax.Array) -> jax.Array:
    """World position of the chain's point: qpos [..., nq] -> [..., 3].

    Only the chain's joints are read; leading dimensions are arbitrary (the planner calls
    it on predicted observations). The Python loop runs over the chain's bodies (a fixed,
    small number) at trace time.
    """
    batch = qpos.shape[:-1]
    rot = jnp.broadcast_to(jnp.eye(3, dtype=qpos.dtype), batch + (3, 3))
    pos = jnp.zeros(batch + (3,), qpos.dtype)
    for offset, axis, index in zip(chain.offsets, chain.axes, chain.qpos_index, strict=True):
        pos = pos + rot @ offset.astype(np.float32)
        if index >= 0:
            rot = rot @ _rotation(axis.astype(np.float32), qpos[..., index])
    return pos + rot @ chain.point.astype(np.float32)
