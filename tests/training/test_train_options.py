"""Training options on the 2-layer random model: fp32 master weights under bf16, gradient
checkpointing, length-grouped batches, and where W&B's project, entity and run name come from."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tabom.models.tiny import build_tiny
from tabom.training.data import epoch_order
from tabom.training.logger import MetricsLogger, read_metrics
from tabom.training.sampling import MEGA_BATCHES, group_by_length, train_order
from tabom.training.trainer import train

from train_helpers import SHAPE, tiny_config


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(str(folder / name))


def test_bf16_full_finetune_keeps_updates_bf16_would_round_away(tmp_path: Path, traj_file: Path) -> None:
    """Weights loaded in bf16, bf16 compute, one AdamW step of 1e-5: the saved weights are float32
    and almost every entry moved by about 1e-5, although rounding them to bf16 gives back the
    start for most of them (what bf16 weights with a bf16 AdamW would have kept)."""
    cfg = tiny_config(tmp_path / "run", traj_file, "trajectory", max_steps=1, dtype="bfloat16", precision="bf16")
    cfg.lora.enabled = False
    cfg.optim.lr = 1e-5
    cfg.optim.weight_decay = 0.0
    final = _weights(train(cfg, console=False) / "final")
    start = {k: v.to(torch.bfloat16).float() for k, v in build_tiny(seed=0, **SHAPE).backbone.state_dict().items()}
    moved, rounded_back, total = 0, 0, 0
    for key, value in final.items():
        assert value.dtype == torch.float32, key
        moved += int(((value - start[key]).abs() > 5e-6).sum())
        rounded_back += int((value.to(torch.bfloat16).float() == start[key]).sum())
        total += value.numel()
    assert moved / total > 0.75  # (embedding rows of characters absent from the batch get no gradient)
    assert rounded_back / total > 0.5


@pytest.mark.parametrize("lora", [True, False])
def test_gradient_checkpointing_gives_the_same_run(tmp_path: Path, traj_file: Path, lora: bool) -> None:
    """Recomputing activations in the backward changes neither the losses nor the weights."""
    cfg = tiny_config(tmp_path / "a", traj_file, "tabom", max_steps=3)
    cfg.lora.enabled = lora
    plain = train(cfg, console=False)
    ckpt = train(dataclasses.replace(cfg, out=str(tmp_path / "b"), gradient_checkpointing=True), console=False)
    assert [r["loss"] for r in read_metrics(plain)] == pytest.approx([r["loss"] for r in read_metrics(ckpt)],
                                                                      rel=1e-6)
    a, b = _weights(plain / "final"), _weights(ckpt / "final")
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_group_by_length_orders_batches_by_length() -> None:
    """A permutation of the rows; each global batch's lengths are close; fixed by (seed, epoch);
    a partial last batch stays last."""
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 200, (203,), generator=gen).tolist()
    order = train_order(lengths, seed=3, epoch=1, global_batch=4, group=True)
    assert sorted(order) == list(range(203))
    assert order == train_order(lengths, seed=3, epoch=1, global_batch=4, group=True)
    assert order != train_order(lengths, seed=3, epoch=2, global_batch=4, group=True)
    assert train_order(lengths, seed=3, epoch=1, global_batch=4, group=False) == epoch_order(203, 3, 1)

    def spread(o: list[int]) -> float:
        batches = [o[i: i + 4] for i in range(0, 200, 4)]
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)

    assert spread(order) < spread(epoch_order(203, 3, 1)) / 4
    assert order[-3:] == sorted(epoch_order(203, 3, 1)[192:], key=lambda i: -lengths[i])[-3:]  # the tail
    assert group_by_length([0, 1, 2, 3], [5, 1, 4, 2], 2, 0, 0) in ([0, 2, 3, 1], [3, 1, 0, 2])
    assert MEGA_BATCHES >= 1
    with pytest.raises(ValueError, match="global_batch"):
        group_by_length([0], [1], 0, 0, 0)


def test_group_by_length_in_training_and_resume(tmp_path: Path, traj_file: Path) -> None:
    """A length-grouped run saves the grouped order and resumes from epoch 1 to the same weights."""
    import shutil

    from tabom.training import checkpoint as ckpt

    cfg = tiny_config(tmp_path / "a", traj_file, "trajectory", batch_size=2)
    cfg.data.group_by_length = True
    full = train(cfg, console=False)
    saved = ckpt.read_state_json(full / "epoch_1")["data_order"]
    assert saved != epoch_order(12, 0, 0) and sorted(saved) == list(range(12))
    shutil.copytree(full, tmp_path / "b")
    for name in ("epoch_2", "final"):
        shutil.rmtree(tmp_path / "b" / name)
    resumed = train(dataclasses.replace(cfg, out=str(tmp_path / "b")), resume=True, console=False)
    a, b = _weights(full / "final"), _weights(resumed / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_wandb_project_entity_and_name_come_from_the_recipe(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`report_to: [wandb]` starts W&B with the recipe's project, entity and run name."""
    calls: list[dict] = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: calls.append(kw) or types.SimpleNamespace(log=lambda *a, **k: None,  # type: ignore[attr-defined]
                                                                       finish=lambda: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    MetricsLogger(tmp_path / "run", ["wandb"], console=False, wandb_project="p", wandb_entity="team",
                  run_name="sft-1").close()
    MetricsLogger(tmp_path / "run2", ["wandb"], console=False).close()
    assert (calls[0]["project"], calls[0]["entity"], calls[0]["name"]) == ("p", "team", "sft-1")
    assert (calls[1]["project"], calls[1]["entity"], calls[1]["name"]) == ("tabom", None, "run2")
