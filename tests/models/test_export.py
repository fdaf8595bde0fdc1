"""`tabom export`: original-layout round trips tensor for tensor, merged adapters, tabom folders to
Dream / LLaDA layouts, sharding, `--format hf`, and refusals that leave nothing written.

The checkpoints are the tiny original-layout folders of `checkpoint_builders` (Dream: Qwen2 names,
bias on q/k/v; LLaDA: `model.transformer.*`, tied and untied).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from checkpoint_builders import (
    build_dream_adapter,
    build_dream_checkpoint,
    build_llada_checkpoint,
    read_weights,
    write_weights,
)
from tabom.models import load, save
from tabom.models.adapters import attach_lora, load_adapter, lora_parameters, save_adapter
from tabom.models.export import export_model, parse_size

torch.set_num_threads(1)
IDS = torch.randint(0, 300, (2, 8), generator=torch.Generator().manual_seed(0))


def logits(path: Path, adapter: Path | None = None) -> torch.Tensor:
    model = load(path, device="cpu", dtype="float32")
    if adapter is not None:
        model = load_adapter(model, adapter)
    with torch.no_grad():
        return model(IDS)


def assert_same_tensors(a: Path, b: Path) -> None:
    want, got = read_weights(a), read_weights(b)
    assert sorted(got) == sorted(want)
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype and torch.equal(got[name], tensor), name


@pytest.mark.parametrize("kind", ["dream_sharded", "llada", "llada_tied"])
def test_unmodified_original_checkpoint_roundtrips_exactly(tmp_path: Path, kind: str) -> None:
    """Every stored tensor comes back under its name with its bits; config, generation config,
    tokenizer and modeling files are copied as they are; the export loads with the same logits."""
    if kind.startswith("dream"):
        src = build_dream_checkpoint(tmp_path / "src", sharded=True)
    else:
        src = build_llada_checkpoint(tmp_path / "src", weight_tying=kind.endswith("tied"))
    result = export_model(src, tmp_path / "out")
    assert_same_tensors(src, result.out)
    for name in ("config.json", "tokenizer_config.json", "generation_config.json", "modeling_dream.py", "modeling_llada.py"):
        if (src / name).exists():
            assert (result.out / name).read_bytes() == (src / name).read_bytes(), name
    assert result.shards == ["model.safetensors"] and result.notes == []
    if kind == "llada_tied":
        assert not any(n.endswith("transformer.ff_out.weight") for n in read_weights(result.out))
    torch.testing.assert_close(logits(result.out), logits(src), atol=0, rtol=0)


def test_bf16_checkpoint_keeps_its_dtype_and_bits(tmp_path: Path) -> None:
    src = build_dream_checkpoint(tmp_path / "src")
    tensors = {k: v.to(torch.bfloat16) for k, v in read_weights(src).items()}
    (src / "model.safetensors").unlink()
    write_weights(src, tensors, shards=2)
    result = export_model(src, tmp_path / "out", max_shard_bytes=30_000)
    assert_same_tensors(src, result.out)
    assert len(result.shards) > 2  # 30 kB shards: more than the source's two
    index = json.loads((result.out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(tensors) and set(index["weight_map"].values()) == set(result.shards)
    assert index["metadata"]["total_size"] == sum(t.numel() * 2 for t in tensors.values())


def test_llada_adapter_merged_into_llada_layout(tmp_path: Path) -> None:
    """A LoRA trained on LLaDA (saved on LLaDA's names) merged by export: LLaDA names and config,
    and the logits of the base + adapter to 1e-5."""
    src = build_llada_checkpoint(tmp_path / "src")
    model = attach_lora(load(src, device="cpu"), r=4, alpha=8, target_modules=("q_proj", "v_proj", "o_proj"))
    with torch.no_grad():
        for param in lora_parameters(model).values():
            param.normal_(0.0, 0.1)
    adapter = save_adapter(model, tmp_path / "lora")
    result = export_model(src, tmp_path / "out", adapter=adapter)
    assert sorted(read_weights(result.out)) == sorted(read_weights(src))
    assert json.loads((result.out / "config.json").read_text())["model_type"] == "llada"
    merged, base = logits(result.out), logits(src)
    torch.testing.assert_close(merged, logits(src, adapter), atol=1e-5, rtol=1e-5)
    assert (merged - base).abs().max() > 1e-2


def test_dream_release_adapter_merged_into_dream_layout(tmp_path: Path) -> None:
    src = build_dream_checkpoint(tmp_path / "src")
    adapter = build_dream_adapter(tmp_path / "lora", src)
    result = export_model(src, tmp_path / "out", adapter=adapter)
    assert sorted(read_weights(result.out)) == sorted(read_weights(src))
    torch.testing.assert_close(logits(result.out), logits(src, adapter), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["dream", "llada"])
def test_tabom_full_finetune_folder_exports_to_original_layout(tmp_path: Path, family: str) -> None:
    """A tabom folder (transformers layout + diffusion.json, what full fine-tuning saves) becomes
    the family's own layout: the original tensor names and values, a config its loader accepts."""
    build = build_dream_checkpoint if family == "dream" else build_llada_checkpoint
    src = build(tmp_path / "src")
    tabom_dir = save(load(src, device="cpu"), tmp_path / "tabom")
    assert (tabom_dir / "diffusion.json").exists()
    result = export_model(tabom_dir, tmp_path / "out")
    assert_same_tensors(src, result.out)
    config = json.loads((result.out / "config.json").read_text())
    original = json.loads((src / "config.json").read_text())
    assert config["model_type"] == original["model_type"] and config["architectures"] == original["architectures"]
    assert set(config) == set(original)  # every field the model's own config class reads
    differ = {k for k in original if config[k] != original[k]} - {"transformers_version"}
    # the fixture's tensors are fp32 under a bf16 torch_dtype; LLaDA's vocab_size (310) below its
    # embedding rows (320) is not kept by the transformers config of a tabom folder
    assert differ <= {"torch_dtype", "vocab_size"}, differ
    assert any("modeling" in n for n in result.notes)  # the remote code must come from the original
    torch.testing.assert_close(logits(result.out), logits(src), atol=0, rtol=0)


def test_hf_format_keeps_the_transformers_layout(tmp_path: Path) -> None:
    src = build_llada_checkpoint(tmp_path / "src")
    result = export_model(src, tmp_path / "out", fmt="hf")
    assert (result.out / "diffusion.json").exists()
    assert "model.layers.0.self_attn.o_proj.weight" in read_weights(result.out)
    torch.testing.assert_close(logits(result.out), logits(src), atol=0, rtol=0)


def test_refusals_write_nothing(tmp_path: Path) -> None:
    src = build_dream_checkpoint(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"out: exists and is not empty \(pass --overwrite"):
        export_model(src, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="family: 'tiny' has no original layout"):
        export_model("tiny", tmp_path / "tiny_out")
    assert not (tmp_path / "tiny_out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temporary folder left
    result = export_model(src, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists() and result.out == out
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2MiB") == 2 * 2**20 and parse_size("123") == 123
    with pytest.raises(ValueError, match="max_shard_size"):
        parse_size("lots")


def test_cli_refuses_a_non_empty_target_with_one_error_line(tmp_path: Path) -> None:
    src = build_llada_checkpoint(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    res = subprocess.run(
        [sys.executable, "-c", "from tabom.cli import main; main()", "export", "--model", str(src), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2 and res.stderr.strip() == f"error: {out}: exists and is not empty (pass --overwrite to replace it)"
    assert [p.name for p in out.iterdir()] == ["x"]
