"""Fixtures of the trainer tests (the helpers they use live in `train_helpers.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from train_helpers import write_trajectories


@pytest.fixture
def traj_file(tmp_path: Path) -> Path:
    """12 synthetic trajectories with 16-token responses."""
    return write_trajectories(tmp_path / "traj.jsonl", 12)


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    """Three prompt/answer rows (SFT-GT data)."""
    path = tmp_path / "prompts.jsonl"
    rows = [{"id": "a", "prompt": "abc", "answer": "cba"}, {"id": "b", "prompt": "de", "answer": "ed"},
            {"prompt": "fab", "answer": "baf"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
