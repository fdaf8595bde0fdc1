"""Sharded evaluation: the length-balanced split, and `tabom eval` under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tabom.eval.sharding import Shard, balance, check_world_fits, merge_in_order


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
    """`tabom eval` (--limit or a short file) and `tabom tds` under 2 processes with 1 problem: one
    error line naming the count, every rank exits 2 before any process group, nothing written."""
    gsm = _gsm(tmp_path / "one.jsonl", 1)
    proc = _eval(2, tiny_dirs["a"], f"gsm8k={gsm}", tmp_path / "out")
    assert proc.returncode != 0 and "exitcode  : 2" in proc.stderr
    assert "exitcode  : -15" not in proc.stderr, proc.stderr[-3000:]  # no rank is recorded as killed
    assert proc.stderr.count("error: ") == 1, proc.stderr[-3000:]
    assert "error: --tasks: task gsm8k: 1 problem for 2 processes; run at most 1 process" in proc.stderr
    assert not (tmp_path / "out").exists()
    tds = [sys.executable, "-m", "tabom.cli", "tds", "--model", str(tiny_dirs["a"]), "--tasks", f"gsm8k={gsm}",
           "--n-prompts", "1", "--device", "cpu", "--out", str(tmp_path / "tds")]
    evals = [sys.executable, "-m", "tabom.cli", "eval", "--model", str(tiny_dirs["a"]), "--tasks", "math_chain",
             "--limit", "1", "--device", "cpu", "--out", str(tmp_path / "out")]
    # one rank alone, no launcher: nothing to rendezvous with, still exit 2 at once (the line on local rank 0)
    for cmd, rank, message in ((evals, "0", "error: --limit 1: task math_chain: 1 problem for 2 processes"),
                               (tds, "0", "error: --n-prompts 1: tds prompts: 1 problem for 2 processes"),
                               (tds, "1", "")):
        env = dict(os.environ, WORLD_SIZE="2", RANK=rank, LOCAL_RANK=rank, OMP_NUM_THREADS="1")
        alone = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert alone.returncode == 2, alone.stderr[-3000:]
        assert message in alone.stderr and alone.stderr.count("error:") == (rank == "0"), alone.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "tds").exists()


def test_world_fit_check_reads_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal
    import time

    handlers: list[Any] = []
    monkeypatch.setattr(signal, "signal", lambda sig, handler: handlers.append((sig, handler)))
    monkeypatch.setattr(time, "sleep", lambda seconds: handlers.append(("sleep", seconds)))
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    check_world_fits({"a": 3, "b": 5}, "x")  # enough problems everywhere
    with pytest.raises(ValueError, match="^x: b: 2 problems for 3 processes; run at most 2 processes"):
        check_world_fits({"a": 4, "b": 2, "c": 0} | {"c": 7}, "x")
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    with pytest.raises(SystemExit) as stop:  # another rank of the same machine: exit 2, silently
        check_world_fits({"a": 1}, "x")
    assert stop.value.code == 2
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "r")  # under torchrun: wait for its SIGTERM first
    with pytest.raises(SystemExit):
        check_world_fits({"a": 1}, "x")
    # every refusing rank turns the launcher's SIGTERM into exit 2; under a launcher the others
    # wait for it, so that rank 0's line comes first
    assert [h[0] for h in handlers] == [signal.SIGTERM] * 3 + ["sleep"] and handlers[-1][1] >= 30
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE: expected an int"):
        check_world_fits({"a": 1}, "x")


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
