"""The layer order of the package (imports only point down), checked with import-linter.

The contract lives in ``pyproject.toml`` (``[tool.importlinter]``): ``jobs`` above ``evaluation`` above
``data`` above ``envs`` and ``agents`` (which never import each other) above ``core``, ``choice`` and
``utils`` (which import nothing else of jaxretail).
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_imports_only_point_down():
    pytest.importorskip("importlinter", reason="import-linter is installed by the dev extra")
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    res = subprocess.run(
        [sys.executable, "-c", code, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout
