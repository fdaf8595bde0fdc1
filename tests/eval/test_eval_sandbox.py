"""Hostile HumanEval completions scored through `evaluate`: each is a failure, the run completes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tabom.eval.evaluate import evaluate
from tabom.tasks import sandbox
from tabom.eval.sources import BenchmarkSource
from tabom.tasks.benchmarks import HumanEval

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TEST = "def check(candidate):\n    assert candidate(1, 2) == 3\n"

BODIES = {
    "good": "    return a + b\n",
    "loop": "    while True:\n        pass\n",
    "memory": "    hog = [bytearray(10**7) for _ in range(10**4)]\n    return a + b\n",
    "network": "    import socket\n    socket.create_connection(('93.184.216.34', 80), timeout=1)\n    return a + b\n",
    "fork": "    import os\n    while True:\n        os.fork()\n",
    # the escapes: a shell through _posixsubprocess writing a marker, the caller killed
    "shell": ("    import _posixsubprocess, os\n    r, w = os.pipe()\n"
              "    _posixsubprocess.fork_exec([b'/bin/sh', b'-c', b'echo x > MARKER'], [b'/bin/sh'], True, (w,),"
              " None, None, -1, -1, -1, -1, -1, -1, r, w, True, True, -1, None, None, None, -1, None, False)\n"
              "    return a + b\n"),
    "kill": ("    import os, signal\n    signal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGKILL)\n"
             "    return a + b\n"),
    "write": "    import os\n    os.chdir(os.path.dirname('MARKER'))\n    open('MARKER', 'w')\n    return a + b\n",
}
HOSTILE = [name for name in BODIES if name != "good"]


class NoModel:
    """What `evaluate` asks of a model when a stand-in decoder does the decoding."""

    name = "stand-in"
    default_strategy = "entropy"
    default_gen_length = 64


def _humaneval(tmp_path: Path) -> tuple[HumanEval, list[str], Path]:
    """The file of one item per body (the marker path filled in), the benchmark, its item order."""
    marker = tmp_path / "escaped"
    path = tmp_path / "humaneval.jsonl"
    with path.open("w") as fh:
        for name in BODIES:
            fh.write(json.dumps({"task_id": f"HumanEval/{name}", "prompt": PROMPT, "canonical_solution": BODIES["good"],
                                 "test": TEST, "entry_point": "add"}) + "\n")
    bench = HumanEval(path, timeout_s=5.0, memory_mb=256)
    return bench, [i.id.split("/")[1] for i in bench.items()], marker


def test_hostile_completions_each_fail_and_run_completes(tmp_path: Path) -> None:
    bench, order, marker = _humaneval(tmp_path)

    def stand_in(model: Any, prompts: list[str], settings: Any, gen: Any) -> tuple[list[str], list[int]]:
        return [BODIES[name].replace("MARKER", str(marker)) for name in order[: len(prompts)]], [0] * len(prompts)

    report = evaluate(NoModel(), [BenchmarkSource(bench)], progress=False, decode_fn=stand_in)
    verdicts = {s.id.split("/")[1]: s for s in report.samples}
    assert verdicts["good"].correct
    for name in HOSTILE:
        assert not verdicts[name].correct, name
    assert verdicts["loop"].extra["timed_out"]
    assert "MemoryError" in verdicts["memory"].extra["stderr"]
    assert report.accuracy() == {"humaneval": 1 / len(BODIES)}
    assert not marker.exists() and os.getppid() > 1  # nothing written outside; this process alive


def test_without_isolation_the_benchmark_refuses_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No isolation, no opt-in: a code benchmark cannot be built (the run stops before decoding), and
    one built earlier stops `evaluate` at scoring; the CLI prints either as `error: ...`, exit 2."""
    bench, order, marker = _humaneval(tmp_path)
    monkeypatch.setattr(sandbox, "isolation", lambda: sandbox.Isolation(False, reason="simulated"))
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    with pytest.raises(sandbox.SandboxUnavailableError, match="simulated"):
        _humaneval(tmp_path)

    def stand_in(model: Any, prompts: list[str], settings: Any, gen: Any) -> tuple[list[str], list[int]]:
        return [BODIES[name].replace("MARKER", str(marker)) for name in order[: len(prompts)]], [0] * len(prompts)

    with pytest.raises(sandbox.SandboxUnavailableError, match="simulated"):
        evaluate(NoModel(), [BenchmarkSource(bench)], progress=False, decode_fn=stand_in)
    assert not marker.exists()
