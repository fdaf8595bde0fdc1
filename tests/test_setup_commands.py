"""The README's two set-up commands, .ci/run and scripts/setup.sh agree, and set-up never installs system-wide.

A fresh Debian/Ubuntu `/usr/bin/python3` refuses `pip install` outside a virtual environment
(PEP 668), so every pip call in setup.sh must go through the environment's own interpreter.
(The commands themselves were run on a clean clone with Debian's /usr/bin/python3: docs/reliability.md.)
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_setup_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("bash scripts/setup.sh")]


def test_readme_has_exactly_two_setup_commands_run_from_the_venv() -> None:
    commands = _readme_setup_commands()
    assert commands == [
        "bash scripts/setup.sh && .venv/bin/tabom reproduce --quick",
        "bash scripts/setup.sh --dev && .venv/bin/python -m pytest -q tests",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_setup_commands()[1] in [line.strip() for line in ci]


def test_setup_installs_only_into_the_virtual_environment() -> None:
    script = (ROOT / "scripts" / "setup.sh").read_text()
    pip_calls = [line.strip() for line in script.splitlines() if re.search(r"\bpip\b.*install", line)
                 and not line.strip().startswith("#")]
    assert pip_calls, "setup.sh installs nothing?"
    for call in pip_calls:
        assert call.startswith('"$PY" -m pip install'), call
    assert "PY=.venv/bin/python" in script
    assert '-m venv .venv' in script
