"""MJCF loading: gymnasium's assets from the installed package (no copies)."""

from __future__ import annotations

import importlib.util
import pathlib

from jaxmbrl.envs._mjx import mujoco


def gymnasium_asset(filename: str) -> pathlib.Path:
    """Path of ``gymnasium/envs/mujoco/assets/<filename>`` in the installed gymnasium."""
    # find_spec locates the package without importing it (gymnasium's import is heavy).
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or spec.origin is None:
        raise ImportError("gymnasium is required for its MJCF assets: pip install gymnasium")
    path = pathlib.Path(spec.origin).parent / "envs" / "mujoco" / "assets" / filename
    if not path.is_file():
        raise FileNotFoundError(f"no MJCF asset {filename!r} in gymnasium at {path.parent}")
    return path


def gymnasium_model(filename: str) -> mujoco.MjModel:
    """Compiles a gymnasium MJCF asset into an MjModel.

    MuJoCo may log deprecation warnings (e.g. ``settotalmass``) to MUJOCO_LOG.TXT in the
    working directory; the model is unaffected.
    """
    return mujoco.MjModel.from_xml_path(str(gymnasium_asset(filename)))
