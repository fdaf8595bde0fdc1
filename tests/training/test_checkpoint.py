"""Atomic checkpoints: a `.tmp` folder or one without COMPLETE is never resumed from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tabom.training import checkpoint as ckpt


def _write(run: Path, name: str, step: int) -> Path:
    tmp = ckpt.begin(run, name)
    (tmp / ckpt.STATE_JSON).write_text(json.dumps({"global_step": step}))
    return ckpt.commit(run, name)


def test_commit_renames_and_marks_complete(tmp_path: Path) -> None:
    folder = _write(tmp_path, "epoch_1", 3)
    assert folder == tmp_path / "epoch_1"
    assert (folder / ckpt.COMPLETE).exists()
    assert not (tmp_path / "epoch_1.tmp").exists()


def test_half_written_checkpoints_are_ignored(tmp_path: Path) -> None:
    """epoch_1 (step 3) is complete; a killed save left step_5.tmp and a step_6 without COMPLETE."""
    _write(tmp_path, "epoch_1", 3)
    tmp = ckpt.begin(tmp_path, "step_5")
    (tmp / ckpt.STATE_JSON).write_text(json.dumps({"global_step": 5}))
    (tmp / ckpt.COMPLETE).write_text("ok\n")  # even with the marker, a .tmp folder is not a checkpoint
    partial = tmp_path / "step_6"
    partial.mkdir()
    (partial / ckpt.STATE_JSON).write_text(json.dumps({"global_step": 6}))
    assert ckpt.find_latest(tmp_path) == tmp_path / "epoch_1"


def test_latest_prefers_larger_step_then_final(tmp_path: Path) -> None:
    _write(tmp_path, "step_2", 2)
    _write(tmp_path, "epoch_1", 4)
    assert ckpt.find_latest(tmp_path).name == "epoch_1"
    _write(tmp_path, "final", 4)
    assert ckpt.find_latest(tmp_path).name == "final"
    assert ckpt.find_latest(tmp_path / "missing") is None


def test_rewriting_a_checkpoint_replaces_it(tmp_path: Path) -> None:
    _write(tmp_path, "final", 1)
    _write(tmp_path, "final", 2)
    assert ckpt.read_state_json(tmp_path / "final")["global_step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_prune_keeps_newest_step_checkpoints(tmp_path: Path) -> None:
    for step in (2, 4, 6):
        _write(tmp_path, f"step_{step}", step)
    _write(tmp_path, "epoch_1", 5)
    deleted = ckpt.prune_step_checkpoints(tmp_path, keep=2)
    assert [p.name for p in deleted] == ["step_2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_1", "step_4", "step_6"]


def test_rng_round_trip(tmp_path: Path) -> None:
    """After restoring, the global generator and the objective's generator repeat their draws."""
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(1)
    ckpt.save_rng(tmp_path, 0, gen)
    a = (torch.rand(3), torch.rand(3, generator=gen))
    ckpt.load_rng(tmp_path, 0, gen)
    b = (torch.rand(3), torch.rand(3, generator=gen))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(FileNotFoundError, match="rng_rank1.pt: missing"):
        ckpt.load_rng(tmp_path, 1, gen)
