"""Hostile HumanEval completions scored through `evaluate`: each is a failure, the run completes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabom.eval.evaluate import evaluate
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
}


class NoModel:
    """What `evaluate` asks of a model when a stand-in decoder does the decoding."""

    name = "stand-in"
    default_strategy = "entropy"
    default_gen_length = 64


def test_loop_memory_network_fork_each_fail_and_run_completes(tmp_path: Path) -> None:
    path = tmp_path / "humaneval.jsonl"
    with path.open("w") as fh:
        for name in BODIES:
            fh.write(json.dumps({"task_id": f"HumanEval/{name}", "prompt": PROMPT, "canonical_solution": BODIES["good"],
                                 "test": TEST, "entry_point": "add"}) + "\n")
    bench = HumanEval(path, timeout_s=2.0, memory_mb=256)
    order = [i.id.split("/")[1] for i in bench.items()]

    def stand_in(model: Any, prompts: list[str], settings: Any, gen: Any) -> tuple[list[str], list[int]]:
        return [BODIES[name] for name in order[: len(prompts)]], [0] * len(prompts)

    report = evaluate(NoModel(), [BenchmarkSource(bench)], progress=False, decode_fn=stand_in)
    verdicts = {s.id.split("/")[1]: s for s in report.samples}
    assert verdicts["good"].correct
    for name in ("loop", "memory", "network", "fork"):
        assert not verdicts[name].correct, name
    assert verdicts["loop"].extra["timed_out"]
    assert "MemoryError" in verdicts["memory"].extra["stderr"]
    assert report.accuracy() == {"humaneval": 0.2}
