"""Every ```python block of README.md runs as written, and every ``python scripts/...`` command it shows
parses with the flags it shows.

Blocks are found automatically, so a new README section is tested as soon as it is added. Each block
runs on its own (a fresh namespace: a snippet must define what it uses) in a temporary working folder.
A block may be skipped only for a stated reason, with an HTML comment on the line just before its fence:

    <!-- readme-test: skip (needs a GPU) -->

Snippets keep their sizes small enough to run here; they say in a comment how the real runs scale.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")


def readme_blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """``(line, language, code, skip_reason)`` for every fenced block."""
    blocks = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        blocks.append((line, m.group(1), m.group(2), skip.group("reason").strip() if skip else None))
    return blocks


PYTHON_BLOCKS = [b for b in readme_blocks(README.read_text()) if b[1] == "python"]


def test_readme_has_python_blocks_and_skips_state_a_reason():
    assert len(PYTHON_BLOCKS) >= 4
    for line in README.read_text().splitlines():
        if "readme-test" in line:
            assert SKIP.search(line), (
                f"a readme-test marker must read '<!-- readme-test: skip (reason) -->': {line}"
            )


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"README.md:{b[0]}" for b in PYTHON_BLOCKS])
def test_readme_python_block_runs_as_written(block, tmp_path, monkeypatch):
    line, _, code, reason = block
    if reason:
        pytest.skip(f"README.md:{line}: {reason}")
    # a fresh interpreter per block: as a user runs it, and untouched by what earlier tests left running
    script = tmp_path / f"readme_block_{line}.py"
    script.write_text(code)
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert res.returncode == 0, f"README.md:{line} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"


# ------------------------------------------------------------------------------------- commands

COMMAND = re.compile(r"python (scripts/[\w/]+\.py)((?:[ \t]+[^\s`&|;]+)*)")
PARSERS = {
    "scripts/evaluate_assortment.py": "jaxretail.jobs.assortment",
    "scripts/coupon_sweep.py": "jaxretail.jobs.coupon_sweep",
    "scripts/coupon_benchmark.py": "jaxretail.jobs.coupon_benchmark",
}


def _parser(script: str) -> argparse.ArgumentParser:
    if script in PARSERS:
        return importlib.import_module(PARSERS[script]).build_parser()
    for folder in (ROOT / "scripts", ROOT / "benchmarks"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    module = importlib.import_module(Path(script).stem)
    return module.build_parser()


def readme_commands() -> list[tuple[str, list[str]]]:
    found = []
    for m in COMMAND.finditer(README.read_text()):
        args = shlex.split(m.group(2), comments=True)  # a trailing "# ..." is a shell comment
        # "--device {cpu,gpu,tpu,auto}" documents the choices: try the first one
        args = [a[1:-1].split(",")[0] if a.startswith("{") and a.endswith("}") else a for a in args]
        found.append((m.group(1), args))
    return found


def test_every_readme_command_parses_with_its_flags():
    commands = readme_commands()
    assert {s for s, _ in commands} >= set(PARSERS) | {"scripts/bench.py"}
    for script, args in commands:
        assert (ROOT / script).exists(), script
        if "--help" in args:
            continue
        parsed = _parser(script).parse_args(args)  # exits 2 (SystemExit) on a flag it does not know
        assert isinstance(parsed, argparse.Namespace)
