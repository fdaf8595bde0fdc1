"""`tabom generate` under torchrun: 2 CPU processes (gloo) shard the prompts and rank 0 merges.

One test, about 20 s on 2 cores (two fresh interpreters import torch and transformers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tabom.models import build_tiny, load, save
from tabom.trajectories import read_trajectories, shard_path
from tabom.trajectories.builder import BuildConfig, build_trajectories, file_jobs, meta_path
from tabom.trajectories.distributed import DistEnv

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]
PROMPTS = ["What is 2+3?", "Hi", "Count to three please.", "x", "Name a colour.", "7*6=?", "one more"]


def sharp_tiny() -> Any:
    """The test-sized tiny random model with its LM head scaled by 50 (see test_builder.py:
    near-uniform logits would let float noise of other batch shapes flip greedy choices)."""
    model = build_tiny(seed=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=2, intermediate_size=64)
    with torch.no_grad():
        model.backbone.get_output_embeddings().weight.mul_(50.0)
    return model


def rows_by_id(path: Path) -> dict[str, dict[str, Any]]:
    return {t.id: t.to_json() for t in read_trajectories(path)}


class Killed(RuntimeError):
    pass


def test_two_processes_resume_a_killed_run_and_match_one_process(tmp_path: Path) -> None:
    """7 prompts, batch 2. A 1-process run killed after its first batch leaves 2 rows; torchrun
    with 2 ranks resumes: 5 left, rank 0 takes every 2nd -> 3, rank 1 -> 2. The merged file has
    the same ids and rows as an uninterrupted 1-process run, and no shard is left behind.
    """
    model_dir = save(sharp_tiny(), tmp_path / "model")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    cfg = BuildConfig(gen_length=8, batch_size=2, verify="none", keep="all")
    lm = load(model_dir)
    single, dist = tmp_path / "single.jsonl", tmp_path / "dist.jsonl"
    build_trajectories(lm, file_jobs(prompts), single, cfg, env=DistEnv())

    def kill(batch: int, kept: list[Any]) -> None:
        raise Killed

    with pytest.raises(Killed):
        build_trajectories(lm, file_jobs(prompts), dist, cfg, env=DistEnv(), on_batch=kill)
    assert len(rows_by_id(dist)) == 2

    env = dict(os.environ, OMP_NUM_THREADS="1", TABOM_NO_PROGRESS="1", CUDA_VISIBLE_DEVICES="")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tabom.cli", "generate", "--model", str(model_dir), "--prompts", str(prompts),
           "--out", str(dist), "--gen-length", "8", "--batch-size", "2", "--verify", "none",
           "--keep", "all", "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "decoded 3 on rank 0" in proc.stdout
    assert "kept 7 / generated 7" in proc.stdout
    assert rows_by_id(dist) == rows_by_id(single)
    assert not shard_path(dist, 0, 2).exists() and not shard_path(dist, 1, 2).exists()
    meta = json.loads(meta_path(dist).read_text())
    assert meta["world_size"] == 2 and meta["total"]["generated"] == 7
