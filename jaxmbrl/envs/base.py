"""Pure-functional MuJoCo-MJX environments for PETS (Chua et al., NeurIPS 2018).

The five tasks of Zhang et al., "On the Importance of Hyperparameter Optimization for
Model-based Reinforcement Learning" (AISTATS 2021), built on MJX so that reset/step are
jittable and vmappable. This module holds what all of them share: the ``State`` pytree,
the common config (episode length, frame skip, MJX solver settings, divergence limits),
and the step logic (action clipping, frame skip, divergence freeze, time limit).

Each environment supplies its MjModel, initial-state distribution, observation, and pure
``reward_fn`` / ``termination_fn`` / PETS pre- and post-processing functions that work on
arbitrary leading batch dimensions (the planner calls them on model predictions). The
step's reward *is* ``reward_fn(obs, action, next_obs)``, so the planner optimises exactly
the reward the environment pays.
"""

from __future__ import annotations

import dataclasses

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.envs._mjx import mjx, mujoco

_SOLVERS = {"newton": mujoco.mjtSolver.mjSOL_NEWTON, "cg": mujoco.mjtSolver.mjSOL_CG}
_INTEGRATORS = {
    "model": None,  # keep the MJCF's integrator
    "euler": mujoco.mjtIntegrator.mjINT_EULER,
    "rk4": mujoco.mjtIntegrator.mjINT_RK4,
    "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
}


@flax.struct.dataclass
class State:
    """Environment state; a pytree, so it batches under vmap and carries through scan."""

    data: mjx.Data
    obs: jax.Array  # [observation_size] float32
    reward: jax.Array  # [] float32, reward of the transition that led here
    done: jax.Array  # [] float32, 1.0 once over (time limit, termination or divergence)
    metrics: dict  # {'diverged': [] float32}
    info: dict  # {'steps': [] int32}


@dataclasses.dataclass(frozen=True)
class MjxConfig:
    """Settings shared by all environments (each env subclasses it with its own defaults).

    Attributes:
      episode_length: steps per trial; ``done`` becomes 1 when reached.
      frame_skip: physics steps per environment step (env dt = timestep * frame_skip).
      solver: MJX constraint solver, 'newton' or 'cg'.
      iterations: maximum solver iterations (MuJoCo's default is 100).
      ls_iterations: maximum line-search iterations per solver iteration (default 50).
      tolerance: solver early-exit tolerance on relative cost improvement / gradient.
      ls_tolerance: line-search tolerance.
      integrator: 'model' keeps the MJCF's integrator; else 'euler', 'rk4', 'implicitfast'.
      max_abs_state: divergence limit on |qpos| and |qvel| (non-finite always diverges).
      max_abs_qacc: divergence limit on |qacc| (MuJoCo C's own check uses mjMAXVAL = 1e10).
    """

    episode_length: int = 1000
    frame_skip: int = 5
    solver: str = "newton"
    iterations: int = 4
    ls_iterations: int = 8
    tolerance: float = 1e-8
    ls_tolerance: float = 0.01
    integrator: str = "model"
    max_abs_state: float = 1e4
    max_abs_qacc: float = 1e10

    def __post_init__(self):
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver={self.solver!r}; valid: {sorted(_SOLVERS)}")
        if self.integrator not in _INTEGRATORS:
            raise ValueError(f"integrator={self.integrator!r}; valid: {sorted(_INTEGRATORS)}")
        for name in ("episode_length", "frame_skip", "iterations", "ls_iterations"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}={value!r}; must be an integer >= 1")
        for name in ("tolerance", "ls_tolerance"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; must be >= 0")
        for name in ("max_abs_state", "max_abs_qacc"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; must be > 0")


def apply_solver_options(mj_model: mujoco.MjModel, config: MjxConfig) -> mujoco.MjModel:
    """Writes the config's solver/integrator settings into ``mj_model.opt`` (in place)."""
    mj_model.opt.solver = _SOLVERS[config.solver]
    mj_model.opt.iterations = config.iterations
    mj_model.opt.ls_iterations = config.ls_iterations
    mj_model.opt.tolerance = config.tolerance
    mj_model.opt.ls_tolerance = config.ls_tolerance
    if _INTEGRATORS[config.integrator] is not None:
        mj_model.opt.integrator = _INTEGRATORS[config.integrator]
    return mj_model


def _within(x: jax.Array, limit: float) -> jax.Array:
    # NaN compares False, so this is also the finiteness check.
    return jnp.all(jnp.abs(x) <= limit)


class MjxEnv:
    """Base class: subclasses set ``name`` and implement the hooks marked below."""

    name: str = ""

    def __init__(self, config: MjxConfig):
        self.config = config
        self.mj_model = apply_solver_options(self._make_mj_model(), config)
        # MJX's default is jax.devices()[0], which only process 0 of a multi-process run
        # can address; each process keeps its own copy on its first local device.
        device = jax.local_devices()[0]
        self.mjx_model = mjx.put_model(self.mj_model, device=device)
        self.action_size = int(self.mj_model.nu)
        ctrlrange = self.mj_model.actuator_ctrlrange.astype(np.float32)
        self.action_low = np.ascontiguousarray(ctrlrange[:, 0])
        self.action_high = np.ascontiguousarray(ctrlrange[:, 1])
        self.episode_length = int(config.episode_length)
        self.dt = float(self.mj_model.opt.timestep * config.frame_skip)
        self._data0 = mjx.make_data(self.mjx_model, device=device)
        # Sizes follow from the pure functions themselves (shape-only tracing, no compile).
        obs = jax.eval_shape(self._obs, self._data0, self._data0)
        self.observation_size = int(obs.shape[-1])
        self.obs_feature_size = int(jax.eval_shape(self.obs_preprocess, obs).shape[-1])
        self.target_size = int(jax.eval_shape(self.make_target, obs, obs).shape[-1])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    @property
    def compiler_options(self) -> dict:
        """XLA options for programs that step this env: ``jax.jit(f, compiler_options=...)``.

        Empty except where a backend needs a workaround (see Pusher).
        """
        return {}

    # ---- hooks for subclasses -------------------------------------------------------
    def _make_mj_model(self) -> mujoco.MjModel:
        raise NotImplementedError

    def _init_qpos_qvel(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        raise NotImplementedError

    def _obs(self, data: mjx.Data, prev_data: mjx.Data) -> jax.Array:
        raise NotImplementedError

    def reward_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        raise NotImplementedError

    # ---- defaults: no termination, PETS state deltas as model targets ---------------
    def termination_fn(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
        del obs, action
        return jnp.zeros(next_obs.shape[:-1], dtype=bool)

    def obs_preprocess(self, obs: jax.Array) -> jax.Array:
        return obs

    def make_target(self, obs: jax.Array, next_obs: jax.Array) -> jax.Array:
        return next_obs - obs

    def obs_postprocess(self, obs: jax.Array, target: jax.Array) -> jax.Array:
        return obs + target

    # ---- the environment ------------------------------------------------------------
    def reset(self, key: jax.Array) -> State:
        """Samples an initial state (no batch dims: vmap over keys for a batch)."""
        qpos, qvel = self._init_qpos_qvel(key)
        data = self._data0.replace(qpos=qpos.astype(jnp.float32), qvel=qvel.astype(jnp.float32))
        zero = jnp.zeros((), jnp.float32)
        return State(
            data=data,
            obs=self._obs(data, data).astype(jnp.float32),
            reward=zero,
            done=zero,
            metrics={"diverged": zero},
            info={"steps": jnp.zeros((), jnp.int32)},
        )

    def _physics_ok(self, data: mjx.Data) -> jax.Array:
        limit = self.config.max_abs_state
        return (
            _within(data.qpos, limit)
            & _within(data.qvel, limit)
            & _within(data.qacc, self.config.max_abs_qacc)
        )

    def step(self, state: State, action: jax.Array) -> State:
        """One environment step: clip the action, ``frame_skip`` physics steps.

        No auto-reset. A done state is returned unchanged (reward 0). A step whose physics
        leaves the limits (non-finite, |qpos|/|qvel| > max_abs_state or |qacc| >
        max_abs_qacc at any substep) keeps the previous data and obs, pays reward 0 and sets
        done = metrics['diverged'] = 1.
        """
        action = jnp.asarray(action)
        if action.shape != (self.action_size,):
            raise ValueError(
                f"{self.name}: action shape {action.shape} != ({self.action_size},); "
                "step takes one action, vmap for batches"
            )
        action = jnp.clip(action.astype(jnp.float32), self.action_low, self.action_high)

        def substep(_, carry):
            data, ok = carry
            data = mjx.step(self.mjx_model, data)
            return data, ok & self._physics_ok(data)

        start = state.data.replace(ctrl=action)
        data, ok = jax.lax.fori_loop(
            0, self.config.frame_skip, substep, (start, jnp.ones((), bool))
        )
        next_obs = self._obs(data, state.data).astype(jnp.float32)
        ok = ok & jnp.all(jnp.isfinite(next_obs))

        was_done = state.done > 0
        freeze = was_done | ~ok
        data = jax.tree.map(lambda new, old: jnp.where(freeze, old, new), data, state.data)
        reward = self.reward_fn(state.obs, action, next_obs).astype(jnp.float32)
        terminated = self.termination_fn(state.obs, action, next_obs)
        steps = state.info["steps"] + jnp.where(was_done, 0, 1).astype(jnp.int32)
        diverged = jnp.maximum(state.metrics["diverged"], (~ok & ~was_done).astype(jnp.float32))
        done = freeze | terminated | (steps >= self.episode_length)
        return State(
            data=data,
            obs=jnp.where(freeze, state.obs, next_obs),
            reward=jnp.where(freeze, jnp.float32(0), reward),
            done=done.astype(jnp.float32),
            metrics={**state.metrics, "diverged": diverged},
            info={**state.info, "steps": steps},
        )
