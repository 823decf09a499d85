"""The MuJoCo GL backend, chosen before anything imports mujoco (binaries that render).

MuJoCo reads MUJOCO_GL once, when first imported, and `benchmarks._cli` imports it (through
jaxmbrl.experiments); a binary that renders calls `choose_backend()` from its `__main__`
guard before those imports. This module imports no mujoco.
"""

from __future__ import annotations

import os
import sys

from jaxmbrl.analysis import render as render_lib  # imports no mujoco


def choose_backend() -> None:
    """Sets MUJOCO_GL (egl on a GPU host, else osmesa, unless set); a value that would make
    `import mujoco` raise is one line on stderr and exit status 2."""
    try:
        render_lib.select_gl_backend()
    except ValueError as error:
        sys.stderr.write(f"{os.path.basename(sys.argv[0])}: error: {error}\n")
        sys.exit(2)
