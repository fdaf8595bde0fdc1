"""`torchrun --nproc_per_node 2 tabom reproduce --plan` (gloo, CPU) on a tiny random Dream-layout checkpoint.

The plan decodes one problem per batch (``decode_batch: 1``), so one process and two cut the same
batches with the same noise: every decoded file is the 1-process one. Training is the 1-process
recipe under DDP (global batch 2 x 4 rows), so trained weights may differ in the last bits; the
accuracies and the step list must not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkpoint_builders import build_dream_checkpoint  # noqa: E402
from test_real import PLAN, _rows, tabom, write_plan  # noqa: E402

SHARDED_PLAN = PLAN.replace("decode_batch: 4", "decode_batch: 1")


def _launch(n: int, cwd: Path, out: str, *extra: str) -> subprocess.Popen:
    port = str(29500 + os.getpid() % 2000 + 3 * n + len(extra))
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", str(n), "--master_port", port,
           "-m", "tabom.cli", "reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--out", out, *extra]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))


def _steps(stdout: str) -> list[str]:
    """`[ran] eval ... (0.3s)` / `[cached] ...` lines -> the step names, in order."""
    return [line.split("] ", 1)[1].rsplit(" (", 1)[0] for line in stdout.splitlines() if line.startswith("[")]


def _setup(tmp_path: Path) -> None:
    build_dream_checkpoint(tmp_path / "ckpt")
    write_plan(tmp_path, SHARDED_PLAN)
    _rows(tmp_path / "ifeval.jsonl", [{"key": k, "prompt": p, "instruction_id_list": ["punctuation:no_comma"],
                                       "kwargs": [{}]} for k, p in ((1, "say hello"), (2, "say goodbye"))])


def test_two_processes_give_the_one_process_grid_and_resume_after_a_kill(tmp_path: Path) -> None:
    """1 process, then 2 processes killed midway (SIGTERM to torchrun) and rerun: the same steps, the
    same trajectories, decoded files and accuracies; rank 1 leaves no file of its own."""
    _setup(tmp_path)
    one = tabom("reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--out", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-3000:]

    killed = _launch(2, tmp_path, "two")
    midway = tmp_path / "two" / "eval" / "math" / "sft_gt" / "seed0" / "full_test.json.done"
    deadline = time.time() + 300
    while not midway.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    killed.send_signal(signal.SIGTERM)
    killed.communicate(timeout=120)
    assert not (tmp_path / "two" / "results.json").exists(), "the run ended before it could be killed"

    rerun = _launch(2, tmp_path, "two")
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stdout[-2000:] + stderr[-4000:]
    assert "[cached] eval math/sft_gt/seed0/full_test" in stdout and "[ran] tds math/tabom/seed0" in stdout
    assert _steps(stdout) == _steps(one.stdout)
    assert stdout.count("report.md: written") == 1  # rank 0 alone speaks

    a, b = tmp_path / "one", tmp_path / "two"
    assert (b / "trajectories" / "math.jsonl").read_text() == (a / "trajectories" / "math.jsonl").read_text()
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    for decode in ("full", "parallel"):
        assert {m: r["mean"] for m, r in rb["main"]["math"][decode].items()} == \
               {m: r["mean"] for m, r in ra["main"]["math"][decode].items()}
    for name in ("eval/math/no_sft/base/full_test.json", "eval/math/no_sft/base/parallel_test.json",
                 "eval/math/tabom/seed0/full_val-epoch_1.json"):
        sa, sb = (json.loads((d / name).read_text()) for d in (a, b))
        assert [s["output"] for s in sb["samples"]] == [s["output"] for s in sa["samples"]], name
        assert sb["accuracy"] == sa["accuracy"] and len(sb["samples"]) == len(sa["samples"]) > 0
    assert json.loads((b / "tds/math/no_sft/base.json").read_text()) == json.loads((a / "tds/math/no_sft/base.json").read_text())
    left = [p.name for p in b.rglob("*") if p.name.endswith(".tmp") or ".shard" in p.name]
    assert not left, left
    assert (b / "report.md").is_file()


def test_more_processes_than_problems_stop_every_rank_before_anything(tmp_path: Path) -> None:
    """A benchmark file of 1 problem under 2 processes: one error line naming the plan, the file's
    benchmark and the counts, exit 2 from every rank, before any process group; nothing written."""
    build_dream_checkpoint(tmp_path / "ckpt")
    write_plan(tmp_path, SHARDED_PLAN)  # ifeval.jsonl holds 1 problem
    proc = _launch(2, tmp_path, "out")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert stderr.count("error: ") == 1, stderr[-3000:]
    assert "error: --plan plan.yaml: test ifeval: 1 problem for 2 processes; run at most 1 process" in stderr
    assert "exitcode  : 2" in stderr  # torchrun's summary: the first rank to stop left with 2
    assert not (tmp_path / "out").exists()
    # each rank alone (no launcher, no rendezvous to wait for): exit 2, the message on local rank 0 only
    for rank, message in (("0", True), ("1", False)):
        env = dict(os.environ, WORLD_SIZE="2", RANK=rank, LOCAL_RANK=rank, OMP_NUM_THREADS="1")
        alone = subprocess.run([sys.executable, "-m", "tabom.cli", "reproduce", "--model", "ckpt", "--plan",
                                "plan.yaml", "--out", "out"], cwd=tmp_path, capture_output=True, text=True,
                               env=env, timeout=300)
        assert alone.returncode == 2, alone.stderr[-3000:]
        assert ("test ifeval: 1 problem for 2 processes" in alone.stderr) is message, alone.stderr
    assert not (tmp_path / "out").exists()
