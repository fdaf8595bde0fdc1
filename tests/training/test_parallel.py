"""`parallel: fsdp` (FSDP2 over 2 CPU processes with gloo) against the 1-process run, exact resume,
refusals; and the pieces of `tabom.training.parallel` on their own.

The comparison with one process is exact in what is computed: the trajectory objective with a
window equal to the largest decode step (15 of a 16-token response) always cuts at step 0, so no
noise is drawn, and 1 process with batch 2 x 2 accumulated micro-batches sees the rows that
2 processes with batch 2 see, averaged the same way. Each torchrun takes about 30 s here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from tabom.config import load_recipe
from tabom.training import parallel
from tabom.training.logger import read_metrics
from tabom.training.trainer import train

from train_helpers import SHAPE, tiny_config, write_trajectories

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]  # torchrun of this interpreter


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [*(f"model_shape.{k}={v}" for k, v in SHAPE.items()), "model=tiny-random", f"data.path={data}",
            "data.gen_length=16", "batch_size=2", "epochs=1", "objective.ce_window=15", "optim.lr=5e-3",
            "optim.warmup_steps=1", f"out={out}", "report_to=[]", "log_every=1", "threads=1", "save_every=1",
            "keep_step_checkpoints=5", *extra]


def _torchrun(args: list[str], resume: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [*TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "tabom.cli", "train", "--recipe", "tiny_trajectory", *args]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TABOM_NO_PROGRESS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(str(folder / name))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def fsdp_full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data, run) of a 2-process FSDP full fine-tuning run: 12 rows, 3 steps, a checkpoint each."""
    root = tmp_path_factory.mktemp("fsdp")
    data = write_trajectories(root / "traj.jsonl", 12)
    proc = _torchrun(_args(data, root / "run", "lora.enabled=false", "parallel=fsdp"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return data, root / "run"


def test_fsdp_full_finetune_matches_one_process(fsdp_full: tuple[Path, Path], tmp_path: Path) -> None:
    """The whole model FSDP wrote loads with tabom.models.load and equals the 1-process run's."""
    from tabom.models import load

    data, run = fsdp_full
    meta = json.loads((run / "final" / "trainer_state.json").read_text())
    assert meta["parallel"] == "fsdp" and meta["world_size"] == 2 and meta["global_step"] == 3
    assert (run / "final" / "optimizer_rank0.pt").exists() and (run / "final" / "optimizer_rank1.pt").exists()
    one = train(load_recipe("tiny_trajectory", _args(data, tmp_path / "one", "lora.enabled=false",
                                                      "grad_accum=2")), console=False)
    sharded, single = _weights(run / "final"), _weights(one / "final")
    assert all(v.dtype == torch.float32 for v in sharded.values())
    assert _max_diff(single, _initial_weights()) > 1e-3  # the weights moved ...
    assert _max_diff(sharded, single) < 1e-5  # ... and moved the same way
    model = load(run / "final")
    ids = torch.tensor([[5, 6, 7, 8]])
    assert torch.allclose(model(ids), load(one / "final")(ids), atol=1e-4)
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3]
    for a, b in zip(read_metrics(run), read_metrics(one)):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def _initial_weights() -> dict[str, torch.Tensor]:
    """The initial weights of the tiny-random model the runs start from."""
    from tabom.models.tiny import build_tiny

    model = build_tiny(seed=0, **SHAPE)
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


def test_fsdp_resume_is_exact(fsdp_full: tuple[Path, Path], tmp_path: Path) -> None:
    """Kill after step 1 (only step_1 kept), resume on 2 processes: the same final weights bit
    for bit, the same losses; and a 1-process resume of that checkpoint is one clear error."""
    data, run = fsdp_full
    cut = tmp_path / "cut"
    shutil.copytree(run, cut)
    for folder in cut.iterdir():
        if folder.is_dir() and folder.name != "step_1":
            shutil.rmtree(folder)
    cfg = load_recipe("tiny_trajectory", _args(data, cut, "lora.enabled=false", "parallel=fsdp"))
    with pytest.raises(ValueError, match="saved with 2 processes, resumed with 1"):
        train(cfg, resume=True, console=False)
    with pytest.raises(ValueError, match="saved with parallel=fsdp, resumed with parallel=ddp"):
        parallel.check_resume({"world_size": 2, "parallel": "fsdp"}, cut / "step_1", 2, "ddp")
    proc = _torchrun(_args(data, cut, "lora.enabled=false", "parallel=fsdp"), resume=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    a, b = _weights(run / "final"), _weights(cut / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in read_metrics(run)] == [r["loss"] for r in read_metrics(cut)]


def test_fsdp_lora_matches_one_process(tmp_path: Path) -> None:
    """LoRA under FSDP (frozen base sharded too) with gradient checkpointing: the adapter equals
    the 1-process run's without checkpointing."""
    data = write_trajectories(tmp_path / "traj.jsonl", 8)
    extra = ["lora.dropout=0.0", "max_steps=2"]
    proc = _torchrun(_args(data, tmp_path / "fsdp", "parallel=fsdp", "gradient_checkpointing=true", *extra))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    one = train(load_recipe("tiny_trajectory", _args(data, tmp_path / "one", "grad_accum=2", *extra)),
                console=False)
    sharded, single = _weights(tmp_path / "fsdp" / "final"), _weights(one / "final")
    assert max(float(v.abs().max()) for k, v in single.items() if "lora_B" in k) > 1e-3  # trained
    assert _max_diff(sharded, single) < 1e-5


def test_fsdp_on_one_process_runs_unsharded(tmp_path: Path, traj_file: Path) -> None:
    """`parallel: fsdp` with one process is the ordinary run (same weights as `ddp`)."""
    assert parallel.effective_mode("fsdp", 1) == "ddp" and parallel.effective_mode("fsdp", 2) == "fsdp"
    assert "nothing to shard" in (parallel.mode_note("fsdp", 1) or "")
    cfg = tiny_config(tmp_path / "a", traj_file, "trajectory", max_steps=2)
    cfg.lora.enabled = False
    a = train(cfg, console=False)
    b = train(dataclasses.replace(cfg, out=str(tmp_path / "b"), parallel="fsdp"), console=False)
    wa, wb = _weights(a / "final"), _weights(b / "final")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((b / "final" / "trainer_state.json").read_text())["parallel"] == "ddp"


def test_decoder_layers_found_or_refused() -> None:
    """The tiny model's 2 layers are found (through PEFT too); a model without a layer list is a
    ValueError naming parallel=ddp."""
    from tabom.models.adapters import attach_lora
    from tabom.models.tiny import build_tiny

    model = build_tiny(seed=0, **SHAPE)
    layers = parallel.decoder_layers(model)
    assert len(layers) == SHAPE["num_hidden_layers"]
    lora = attach_lora(build_tiny(seed=0, **SHAPE), r=2, alpha=2, dropout=0.0, target_modules=["q_proj"])
    assert len(parallel.decoder_layers(lora)) == SHAPE["num_hidden_layers"]
    with pytest.raises(ValueError, match="no list of decoder layers.*parallel=ddp"):
        parallel.decoder_layers(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))


def test_keep_fp32_master_casts_what_the_optimizer_updates() -> None:
    """Full fine-tuning: trainable bf16 weights become float32; frozen ones stay unless sharded."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)).to(torch.bfloat16)
    model[1].weight.requires_grad_(False)
    assert parallel.keep_fp32_master(model, full_finetune=True, sharded=False) == 3
    assert model[0].weight.dtype == torch.float32 and model[1].weight.dtype == torch.bfloat16
    assert parallel.keep_fp32_master(model, full_finetune=False, sharded=True) == 1
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_launcher_configs_load_in_accelerate() -> None:
    """launch/*.yaml are accelerate cluster configs: multi-GPU, 8 processes per node, precision
    left to the recipe."""
    from accelerate.commands.config.config_args import ClusterConfig

    root = Path(__file__).resolve().parents[2] / "launch"
    found = {}
    for name in ("accelerate_1node.yaml", "accelerate_2nodes.yaml"):
        cfg = ClusterConfig.from_yaml_file(str(root / name))
        assert cfg.distributed_type.value == "MULTI_GPU" and str(cfg.mixed_precision) in ("no", "MixedPrecisionType.NO")
        assert cfg.num_processes == 8 * cfg.num_machines
        found[name] = cfg.num_machines
    assert found == {"accelerate_1node.yaml": 1, "accelerate_2nodes.yaml": 2}
