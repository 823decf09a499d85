"""The one place that imports MuJoCo MJX.

Importing ``mujoco.mjx`` prints "Failed to import warp ..." to stdout with plain ``print``
when the optional Warp backend is absent; we swallow it so that machine-readable stdout
(benchmark tables, JSON) stays clean. Everything else imports ``mjx`` from here.
"""

import contextlib
import io

import mujoco

with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx

__all__ = ["mjx", "mujoco"]
