"""The training loop end to end on a 2-layer random model: folders, metrics, resume equality."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tabom.config import load_recipe
from tabom.training import checkpoint as ckpt
from tabom.training.logger import read_metrics
from tabom.training.trainer import train

from train_helpers import tiny_config


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("adapter_model.safetensors")) or sorted(folder.glob("model*.safetensors"))
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(str(f)))
    return out


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa and wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def _truncate(src: Path, dst: Path, keep: list[str]) -> None:
    """Copy a finished run, keeping only the named checkpoints (what a kill would have left)."""
    shutil.copytree(src, dst)
    for folder in dst.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder)


def test_run_writes_checkpoints_and_metrics(tmp_path: Path, traj_file: Path) -> None:
    """12 rows, batch 4, 2 epochs: 3 steps per epoch, 6 in all; epoch_1 holds step 3."""
    run = train(tiny_config(tmp_path / "run", traj_file, "tabom"), console=False)
    names = sorted(p.name for p in run.iterdir())
    assert names == ["epoch_1", "epoch_2", "final", "metrics.jsonl", "recipe.yaml"]
    assert ckpt.read_state_json(run / "epoch_1")["global_step"] == 3
    final = run / "final"
    for f in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "recipe.yaml",
              "trainer_state.pt", "trainer_state.json", "rng_rank0.pt", "COMPLETE"):
        assert (final / f).exists(), f
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "loss_ce", "loss_rank", "lr", "grad_norm", "tokens_per_s"} <= set(rows[0])
    assert rows[0]["lr"] == pytest.approx(5e-3)  # warm-up of 1 step reaches the peak at once
    assert rows[-1]["lr"] < rows[1]["lr"]  # cosine decay
    assert load_recipe(final / "recipe.yaml").objective.name == "tabom"
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny_config(tmp_path / "run", traj_file, "tabom"), console=False)


def test_resume_after_epoch_equals_uninterrupted(tmp_path: Path, traj_file: Path) -> None:
    """2 epochs straight vs epoch 1 + resume: same adapter bit for bit, same metrics lines.

    LoRA dropout 0.1 makes the result depend on the restored torch RNG as well."""
    cfg = tiny_config(tmp_path / "a", traj_file, "tabom")
    cfg.lora.dropout = 0.1
    full = train(cfg, console=False)
    _truncate(full, tmp_path / "b", keep=["epoch_1"])
    resumed = train(dataclasses.replace(cfg, out=str(tmp_path / "b")), resume=True, console=False)
    _assert_same_weights(full / "final", resumed / "final")
    assert [r["loss"] for r in read_metrics(full)] == [r["loss"] for r in read_metrics(resumed)]


def test_resume_mid_epoch_with_accumulation(tmp_path: Path, traj_file: Path) -> None:
    """Batch 2, 2 micro-batches per step, a checkpoint every step: resume from step_4 (inside
    epoch 2, which runs steps 4-6) ends with the same weights as the straight run."""
    cfg = tiny_config(tmp_path / "a", traj_file, "dinfer", batch_size=2, grad_accum=2, save_every=1,
                      keep_step_checkpoints=10)
    full = train(cfg, console=False)
    assert ckpt.read_state_json(full / "step_4")["batch_in_epoch"] == 2
    _truncate(full, tmp_path / "b", keep=["epoch_1", "step_4"])
    resumed = train(dataclasses.replace(cfg, out=str(tmp_path / "b")), resume=True, console=False)
    _assert_same_weights(full / "final", resumed / "final")


def test_kill_during_save_leaves_resumable_run(tmp_path: Path, traj_file: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash while committing epoch_2 leaves epoch_2.tmp; resume ignores it and restarts from
    epoch_1, ending where an uninterrupted run ends."""
    cfg = tiny_config(tmp_path / "b", traj_file, "trajectory")
    real_commit = ckpt.commit

    def crash(run_dir: Path, name: str) -> Path:
        if name == "epoch_2":
            raise KeyboardInterrupt("killed")
        return real_commit(run_dir, name)

    monkeypatch.setattr(ckpt, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, console=False)
    monkeypatch.setattr(ckpt, "commit", real_commit)
    assert (tmp_path / "b" / "epoch_2.tmp").is_dir()
    assert ckpt.find_latest(tmp_path / "b").name == "epoch_1"
    resumed = train(cfg, resume=True, console=False)
    full = train(dataclasses.replace(cfg, out=str(tmp_path / "a")), console=False)
    _assert_same_weights(full / "final", resumed / "final")
    assert not (resumed / "epoch_2.tmp").exists()


def test_full_finetune_t3d_saves_and_resumes(tmp_path: Path, traj_file: Path) -> None:
    """No LoRA: the T3D reference is a frozen copy; checkpoints hold full safetensors weights."""
    cfg = tiny_config(tmp_path / "a", traj_file, "t3d", epochs=2)
    cfg.lora.enabled = False
    cfg.optim.lr = 1e-3
    full = train(cfg, console=False)
    assert (full / "final" / "model.safetensors").exists() and (full / "final" / "diffusion.json").exists()
    _truncate(full, tmp_path / "b", keep=["epoch_1"])
    resumed = train(dataclasses.replace(cfg, out=str(tmp_path / "b")), resume=True, console=False)
    _assert_same_weights(full / "final", resumed / "final")
    from tabom.models import load

    assert load(full / "final").family == "tiny"


def test_resume_of_a_finished_run_does_nothing(tmp_path: Path, traj_file: Path) -> None:
    cfg = tiny_config(tmp_path / "a", traj_file, "nelbo", max_steps=2)
    run = train(cfg, console=False)
    assert [r["step"] for r in read_metrics(run)] == [1, 2]
    before = (run / "final" / "trainer_state.json").stat().st_mtime_ns
    train(cfg, resume=True, console=False)
    assert (run / "final" / "trainer_state.json").stat().st_mtime_ns == before
    assert not (run / "epoch_1").exists()  # max_steps 2 stops inside epoch 1 (3 batches)


def test_the_recipe_thread_count_holds_only_while_training(tmp_path, traj_file, monkeypatch):
    """A pipeline that evaluates after training must not be left on the recipe's 1 thread."""
    import torch

    from tabom.training.trainer import train

    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n))[1])
    real(2)
    train(tiny_config(tmp_path / "run", traj_file, "nelbo", max_steps=1, threads=1), console=False)
    assert seen == [1, 2] and torch.get_num_threads() == 2


def test_resolve_precision_auto_follows_the_device_given() -> None:
    from tabom.training.build import resolve_precision

    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cuda") == "no"
    assert resolve_precision("auto", "cpu") == "no"  # even where a GPU is visible
    cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    assert resolve_precision("auto", "cuda:0") == ("bf16" if cuda_bf16 else "no")
    assert resolve_precision("auto") == ("bf16" if cuda_bf16 else "no")
