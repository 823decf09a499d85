"""The architecture is a contract: import-linter checks the layers of pyproject.toml.

The real tree keeps every contract; a copy with one forbidden import breaks the contract
that names it (so the check can fail, and CI runs it).
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def _lint(root: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": root}
    return subprocess.run(
        [LINT, "--no-cache", "--config", os.path.join(root, "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_every_contract():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("agents/presets.py", "from jaxmbrl import tuners", "agents import no tuners"),
        ("envs/base.py", "import jaxmbrl.agents", "Layers"),
        ("tuners/space.py", "from jaxmbrl import options", "tuners import nothing else"),
        ("experiments/rundir.py", "from absl import flags", "only benchmarks/ reads flags"),
        ("models/training.py", "from jaxmbrl.models import ensemble", "models: ensemble"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    shutil.copytree(os.path.join(REPO, "jaxmbrl"), tmp_path / "jaxmbrl")
    shutil.copy(os.path.join(REPO, "pyproject.toml"), tmp_path / "pyproject.toml")
    path = tmp_path / "jaxmbrl" / module
    path.write_text(path.read_text() + f"\n{line}  # injected by the test\n")
    result = _lint(str(tmp_path))
    assert result.returncode != 0
    # The summary lists each contract (names may wrap) followed by KEPT or BROKEN.
    text = " ".join(result.stdout.split())
    summary = text[text.index("Analyzed") :]
    verdict = re.search(re.escape(contract) + r".*?\b(KEPT|BROKEN)\b", summary)
    assert verdict and verdict.group(1) == "BROKEN", result.stdout[-3000:]
