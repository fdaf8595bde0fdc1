"""Sharded evaluation: the length-balanced split, and `tabom eval` under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tabom.eval.sharding import Shard, balance, merge_in_order


def test_balance_is_a_partition_balanced_by_length() -> None:
    lengths = [100, 5, 5, 5, 5, 90, 10, 10]
    shares = balance(lengths, 2)
    assert sorted(shares[0] + shares[1]) == list(range(8))
    totals = [sum(lengths[i] for i in s) for s in shares]
    assert abs(totals[0] - totals[1]) <= 10  # 100 and 90 land on different ranks
    assert {0, 5} - set(shares[0]) and {0, 5} - set(shares[1])
    assert balance(lengths, 2) == shares  # every rank computes the same split
    assert balance([3], 1) == [[0]]
    with pytest.raises(ValueError, match="world size must be at least 1"):
        balance([1], 0)


def test_merge_in_order_and_fit_check() -> None:
    assert merge_in_order([[(1, "b"), (3, "d")], [(0, "a"), (2, "c")]]) == ["a", "b", "c", "d"]
    with pytest.raises(RuntimeError, match="not 0..1"):
        merge_in_order([[(0, "a")], [(2, "c")]])
    with pytest.raises(ValueError, match="task gsm8k: world size 4 is larger than its 3 problems"):
        Shard(0, 4).check_fits(3, "task gsm8k")
    assert Shard.from_env() == Shard(0, 1) or os.environ.get("WORLD_SIZE")


def _gsm(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"question": f"what is {a} + {a * a} ?" + " more" * (a % 3),
                                        "answer": f"#### {a + a * a}"}) + "\n" for a in range(n)))
    return path


def _eval(n: int, model: Path, tasks: str, out: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", str(n), "--master_port",
           str(29700 + n + os.getpid() % 1000), "-m", "tabom.cli", "eval", "--model", str(model), "--tasks", tasks,
           "--gen-length", "8", "--steps", "8", "--batch-size", "2", "--device", "cpu", "--out", str(out),
           "--no-progress", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)


def test_two_processes_write_the_one_process_files(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    """torchrun with 2 CPU processes: rank 0 writes results.json and samples.jsonl with every sample of
    the 1-process run (same order, outputs, verdicts, accuracy); rank 1 writes nothing of its own."""
    tasks = f"math_chain,gsm8k={_gsm(tmp_path / 'gsm.jsonl', 5)}"
    outs = {}
    for n in (1, 2):
        proc = _eval(n, tiny_dirs["a"], tasks, tmp_path / f"out{n}", ("--limit", "5"))
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        outs[n] = tmp_path / f"out{n}"
    one, two = (json.loads((outs[n] / "results.json").read_text()) for n in (1, 2))
    assert two["counts"] == {"math_chain": 5, "gsm8k": 5}
    assert two["accuracy"] == one["accuracy"] and two["metrics"] == one["metrics"]
    strip = [{k: v for k, v in s.items()} for s in one["samples"]]
    assert two["samples"] == strip
    assert (outs[2] / "samples.jsonl").read_text() == (outs[1] / "samples.jsonl").read_text()
    assert sorted(p.name for p in outs[2].iterdir()) == sorted(p.name for p in outs[1].iterdir())


def test_more_processes_than_problems_is_an_error(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    proc = _eval(2, tiny_dirs["a"], f"gsm8k={_gsm(tmp_path / 'one.jsonl', 1)}", tmp_path / "out")
    assert proc.returncode != 0
    assert "error: task gsm8k: world size 2 is larger than its 1 problems" in proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_tds_two_processes_equal_one(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    """`tabom tds` under torchrun with 2 CPU processes writes the 1-process curve and scalar exactly."""
    outs = {}
    for n in (1, 2):
        cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", str(n), "--master_port",
               str(29800 + n + os.getpid() % 1000), "-m", "tabom.cli", "tds", "--model", str(tiny_dirs["a"]),
               "--tasks", "math_chain", "--gen-length", "8", "--batch-size", "2", "--device", "cpu", "--n-prompts", "6",
               "--out", str(tmp_path / f"tds{n}")]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                              timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        outs[n] = tmp_path / f"tds{n}"
    assert (outs[2] / "tds.csv").read_text() == (outs[1] / "tds.csv").read_text()
    one, two = (json.loads((outs[n] / "tds.json").read_text()) for n in (1, 2))
    assert two["model"]["tds"] == one["model"]["tds"] and two["model"]["n"] == 6
