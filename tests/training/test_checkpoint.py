"""Atomic checkpoints: a `.tmp` folder or one without COMPLETE is never resumed from."""

from __future__ import annotations

import json
import os
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


def test_an_interrupted_prune_never_blocks_resume(tmp_path: Path) -> None:
    """The issue's state: a kill mid-delete left step_2/ with only COMPLETE (its state JSON gone).

    The old prune (plain rmtree) could leave exactly that, and every later resume then failed
    reading step_2's trainer_state.json. Such a folder is skipped; a half-deleted `.trash`
    folder (what the crash-safe prune can leave) is never a checkpoint and is cleared.
    """
    _write(tmp_path, "step_4", 4)
    _write(tmp_path, "epoch_1", 3)
    half = tmp_path / "step_2"
    half.mkdir()
    (half / ckpt.COMPLETE).write_text("ok\n")
    torn = tmp_path / "step_6"
    torn.mkdir()
    (torn / ckpt.COMPLETE).write_text("ok\n")
    (torn / ckpt.STATE_JSON).write_text('{"global_st')  # torn JSON: skipped, not fatal
    trash = tmp_path / f"step_8{ckpt.TRASH_SUFFIX}"
    trash.mkdir()
    (trash / ckpt.COMPLETE).write_text("ok\n")
    (trash / ckpt.STATE_JSON).write_text(json.dumps({"global_step": 8}))
    assert ckpt.find_latest(tmp_path) == tmp_path / "step_4"
    assert [f.name for _, f in ckpt.list_complete(tmp_path)] == ["epoch_1", "step_4"]
    assert ckpt.remove_trash(tmp_path) == [trash]
    assert not trash.exists()


def test_prune_renames_before_deleting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill inside the delete (simulated: rmtree dies on the renamed folder) leaves no checkpoint
    that is half there: step_2 is gone under its own name, step_4 and step_6 are intact."""
    for step in (2, 4, 6):
        _write(tmp_path, f"step_{step}", step)

    def killed(path: object, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt(f"killed while deleting {path}")

    monkeypatch.setattr(ckpt.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt, match=r"step_2\.trash"):
        ckpt.prune_step_checkpoints(tmp_path, keep=2)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_2.trash", "step_4", "step_6"]
    assert ckpt.find_latest(tmp_path) == tmp_path / "step_6"
    assert [f.name for _, f in ckpt.list_complete(tmp_path)] == ["step_4", "step_6"]


def test_only_checkpoint_names_count(tmp_path: Path) -> None:
    """`epoch_1.old` (what commit moves aside) is complete inside but is not a checkpoint."""
    _write(tmp_path, "epoch_1", 3)
    (tmp_path / "epoch_1").rename(tmp_path / "epoch_1.old")
    assert ckpt.find_latest(tmp_path) is None


def test_metrics_truncation_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill before the rename leaves metrics.jsonl as it was; after it, exactly the kept lines."""
    from tabom.training import logger as metrics_log

    path = tmp_path / metrics_log.METRICS_FILE
    original = "".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6)) + '{"step": 6, "lo'
    path.write_text(original)

    def killed(src: object, dst: object) -> None:
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        metrics_log.truncate_metrics(tmp_path, 3)
    monkeypatch.undo()
    assert path.read_text() == original
    assert metrics_log.truncate_metrics(tmp_path, 3) == 3  # steps 4, 5 and the torn line
    assert [r["step"] for r in metrics_log.read_metrics(tmp_path)] == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == [metrics_log.METRICS_FILE]  # no temporary left
    assert metrics_log.truncate_metrics(tmp_path, 3) == 0
