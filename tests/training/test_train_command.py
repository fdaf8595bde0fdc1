"""`tabom train` on the command line: --dry-run, override errors, and a 2-process CPU run."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tabom.training.data import epoch_order, rank_batches
from tabom.training.logger import read_metrics

from train_helpers import SHAPE, trajectory_obj

SHAPE_ARGS = [f"model_shape.{k}={v}" for k, v in SHAPE.items()]


def _app():
    from tabom.cli import app

    return app


def test_dry_run_prints_resolved_recipe() -> None:
    result = CliRunner().invoke(_app(), ["train", "--recipe", "tiny_tabom", "--dry-run",
                                         "optim.lr=3e-4", "objective.margin=0.3"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.stdout)
    assert resolved["optim"]["lr"] == 3e-4
    assert resolved["objective"] == {"name": "tabom", "ce_window": 16, "rank_window": 16, "margin": 0.3,
                                     "rank_lambda": 1.0, "global_window": False}


def test_bad_override_exits_with_message() -> None:
    result = CliRunner().invoke(_app(), ["train", "--recipe", "tiny_tabom", "--dry-run", "lora.r=x"])
    assert result.exit_code == 2
    assert "lora.r: expected int, got str 'x'" in result.output


def _data_with_empty_rows(path: Path, n: int = 8) -> list[bool]:
    """n rows; odd rows were never decoded (every step -1, legal when steps != gen_length)."""
    rng = random.Random(0)
    empty = []
    with open(path, "w") as f:
        for i in range(n):
            obj = trajectory_obj(i, rng)
            if i % 2:
                obj["decoding_order"] = [-1] * len(obj["decoding_order"])
                obj["settings"]["steps"] = 32
            empty.append(bool(i % 2))
            f.write(json.dumps(obj) + "\n")
    return empty


def test_two_cpu_processes_complete(tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo DDP), batch 1 per rank. Some steps give one rank a
    never-decoded row (nothing to supervise) and the other a normal one: the run must not hang.
    8 rows / (1 x 2) = 4 steps per epoch, 2 epochs -> 8 logged steps. Takes about 35 s."""
    data = tmp_path / "traj.jsonl"
    empty = _data_with_empty_rows(data)
    mixed = [
        g for epoch in (0, 1)
        for g, (a, b) in enumerate(zip(*(rank_batches(epoch_order(8, 0, epoch), 1, r, 2) for r in (0, 1))))
        if empty[a[0]] != empty[b[0]]
    ]
    assert mixed, "the data order should put an empty row against a full one at least once"
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "tabom.cli", "train",
           "--recipe", "tiny_trajectory", "model=tiny-random", *SHAPE_ARGS, f"data.path={data}",
           "data.gen_length=16", "batch_size=1", "epochs=2", "objective.ce_window=4", f"out={out}", "report_to=[]",
           "log_every=1", "threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TABOM_NO_PROGRESS": "1"}
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert time.time() - start < 240
    assert (out / "final" / "rng_rank0.pt").exists() and (out / "final" / "rng_rank1.pt").exists()
    assert [r["step"] for r in read_metrics(out)] == list(range(1, 9))
    assert json.loads((out / "final" / "trainer_state.json").read_text())["world_size"] == 2
