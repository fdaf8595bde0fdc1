"""LoRA adapters on DiffusionLM: attach, released-layout load, exact LoRA maths, save, merge, disable.

LoRA maths checked here: a LoRA layer computes y = x W^T + b + (alpha / r) * (x A^T) B^T, so the model
with an adapter equals the base model whose weight is W' = W + (alpha / r) B A. The fixture adapter
has r = 4, alpha = 8 (scaling 2) and random A (r, in), B (out, r) on every q_proj / v_proj.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from checkpoint_builders import (
    build_dream_adapter,
    build_dream_checkpoint,
    build_llada_adapter,
    build_llada_checkpoint,
    build_lora_adapter,
)
from tabom.models.adapters import (
    attach_lora,
    disable_adapter,
    has_adapter,
    load_adapter,
    lora_parameters,
    merge_adapter,
    save_adapter,
)
from tabom.models.dream import load_dream
from tabom.models.llada import load_llada

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dream_checkpoint(tmp_path_factory.mktemp("dream"))


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory, dream_dir: Path) -> Path:
    return build_dream_adapter(tmp_path_factory.mktemp("lora"), dream_dir)


def ids_batch(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 300, (2, 8), generator=torch.Generator().manual_seed(seed))


def merged_by_hand(base_dir: Path, adapter: Path, rename: dict[str, str], loader) -> torch.nn.Module:
    """The base model with W <- W + (alpha / r) B A applied to each adapted module, by hand."""
    from safetensors.torch import load_file

    model = loader(base_dir)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    w = load_file(str(adapter / "adapter_model.safetensors"))
    with torch.no_grad():
        for key, a in w.items():
            if not key.endswith("lora_A.weight"):
                continue
            module = key[len("base_model.model.") : -len(".lora_A.weight")]
            for old, new in rename.items():
                module = module.replace(old, new)
            b = w[key.replace("lora_A", "lora_B")]
            model.backbone.get_submodule(module).weight += scale * (b @ a)  # (out, in)
    return model


def test_attach_lora_starts_as_identity_and_trains_only_lora(dream_dir: Path) -> None:
    """B = 0 at init, so logits are unchanged. Trainable count with r = 16 on q (32 -> 32) and
    v (32 -> 16) in 2 layers: per layer 16*32 + 32*16 (q) + 16*32 + 16*16 (v) = 1792, total 3584."""
    model = load_dream(dream_dir)
    ids = ids_batch()
    with torch.no_grad():
        before = model(ids)
    attach_lora(model, r=16, alpha=16)
    assert has_adapter(model)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(trainable) == {f"backbone.{n}" for n in lora_parameters(model)}
    assert sum(p.numel() for p in trainable.values()) == 3584
    with torch.no_grad():
        torch.testing.assert_close(model(ids), before)
    picked = model(ids, positions=ids > 150)  # (N, V) packed, through the PeftModel
    assert picked.shape == (int((ids > 150).sum()), 320)
    picked.logsumexp(-1).sum().backward()
    assert all(p.grad is not None for n, p in trainable.items() if "lora_B" in n)


def test_released_dream_adapter_changes_logits_as_lora_predicts(dream_dir: Path, adapter_dir: Path) -> None:
    """The authors' layout (base Dream-org/Dream-v0-Instruct-7B, Dream module names) loads with no
    download, and the logits equal the hand-merged W + (alpha / r) B A model to 1e-5."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "Dream-org/Dream-v0-Instruct-7B"
    base = load_dream(dream_dir)
    ids = ids_batch(1)
    with torch.no_grad():
        base_logits = base(ids)
    model = load_adapter(base, adapter_dir)
    want = merged_by_hand(dream_dir, adapter_dir, {}, load_dream)
    with torch.no_grad():
        got = model(ids)
        torch.testing.assert_close(got, want(ids), atol=1e-5, rtol=1e-5)
        assert (got - base_logits).abs().max() > 1e-2
        with disable_adapter(model):
            torch.testing.assert_close(model(ids), base_logits)
        torch.testing.assert_close(model(ids), got)  # back on after the block
    assert not any(p.requires_grad for p in model.parameters())  # trainable=False


def test_save_load_roundtrip_and_merge(tmp_path: Path, dream_dir: Path, adapter_dir: Path) -> None:
    model = load_adapter(load_dream(dream_dir), adapter_dir, trainable=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"backbone.{n}" for n in lora_parameters(model)} and len(trainable) == 8
    ids = ids_batch(2)
    with disable_adapter(model):  # a frozen-reference pass (T3D) must not change what trains
        model(ids)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable
    with torch.no_grad():
        want = model(ids)
    out = save_adapter(model, tmp_path / "saved")
    saved = json.loads((out / "adapter_config.json").read_text())
    assert saved["r"] == 4 and saved["lora_alpha"] == 8 and sorted(saved["target_modules"]) == ["q_proj", "v_proj"]
    again = load_adapter(load_dream(dream_dir), out)
    with torch.no_grad():
        torch.testing.assert_close(again(ids), want, atol=0, rtol=0)
    merge_adapter(again)
    assert not has_adapter(again) and type(again.backbone).__name__ == "Qwen2ForCausalLM"
    with torch.no_grad():
        torch.testing.assert_close(again(ids), want, atol=1e-5, rtol=1e-5)


def test_llada_adapter_in_original_tree_is_renamed(tmp_path: Path) -> None:
    """Keys under model.transformer.blocks.N.{q_proj, attn_out} land on self_attn.{q_proj, o_proj}."""
    d = build_llada_checkpoint(tmp_path / "llada")
    adapter = build_llada_adapter(tmp_path / "lora", d)
    model = load_adapter(load_llada(d), adapter)
    rename = {"model.transformer.blocks.": "model.layers.", ".q_proj": ".self_attn.q_proj", ".attn_out": ".self_attn.o_proj"}
    want = merged_by_hand(d, adapter, rename, load_llada)
    ids = ids_batch(3)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), want(ids), atol=1e-5, rtol=1e-5)


def test_adapter_errors(tmp_path: Path, dream_dir: Path, adapter_dir: Path) -> None:
    import shutil

    wrong = tmp_path / "wrong"
    shutil.copytree(adapter_dir, wrong)
    cfg = json.loads((wrong / "adapter_config.json").read_text())
    cfg["target_modules"] = ["q_proj", "k_proj"]
    (wrong / "adapter_config.json").write_text(json.dumps(cfg))
    model = load_dream(dream_dir)
    # 2 layers x (lora_A, lora_B) on v_proj are stored but not targeted; the k_proj ones are targeted but absent
    fit = r"adapter_model.safetensors: adapter does not fit the model: 4 unexpected key\(s\).*v_proj.*4 missing key\(s\).*k_proj"
    with pytest.raises(ValueError, match=fit):
        load_adapter(model, wrong)
    assert not has_adapter(model)  # the failed attempt left the base model clean
    (wrong / "adapter_model.safetensors").unlink()
    (wrong / "adapter_model.bin").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"adapter_model.safetensors: missing.*adapter_model.bin"):
        load_adapter(model, wrong)
    cfg["peft_type"] = "IA3"
    (wrong / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"adapter_config.json:1: peft_type: 'IA3'"):
        load_adapter(model, wrong)
    with pytest.raises(ValueError, match="no adapter"):
        with disable_adapter(model):
            pass


def test_attach_lora_is_quiet(dream_dir: Path) -> None:
    """peft reads transformers' deprecated `is_gradient_checkpointing` when it wraps a model; the
    FutureWarning it raises says nothing a tabom user can act on, so attach_lora keeps it out."""
    import warnings

    model = load_dream(dream_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        attach_lora(model, r=4, alpha=4)
    assert has_adapter(model)
    assert not [str(w.message) for w in caught if "is_gradient_checkpointing" in str(w.message)]


REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "release_adapters"


def _randomise_lora(model, seed: int) -> None:
    """Give every LoRA B a random value (fresh B = 0 would make every layout look alike)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in lora_parameters(model).items():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def test_llada_adapter_is_saved_on_llada_names_and_loads_back(tmp_path: Path) -> None:
    """Trained on a LLaDA-layout checkpoint, an adapter is saved on LLaDA's module tree (keys and
    target_modules), loads back with exactly the same logits, and equals the same adapter saved
    in tabom's own (Llama) layout."""
    from safetensors.torch import load_file

    d = build_llada_checkpoint(tmp_path / "llada")
    model = attach_lora(load_llada(d), r=4, alpha=8, target_modules=("q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"))
    _randomise_lora(model, 5)
    ids = ids_batch(4)
    with torch.no_grad():
        want = model(ids)
    out = save_adapter(model, tmp_path / "original")
    keys = sorted(load_file(str(out / "adapter_model.safetensors")))
    assert keys and all(k.startswith("base_model.model.model.transformer.blocks.") for k in keys)
    assert "base_model.model.model.transformer.blocks.1.attn_out.lora_B.weight" in keys
    assert "base_model.model.model.transformer.blocks.0.ff_out.lora_A.weight" in keys
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["target_modules"] == ["attn_out", "ff_out", "ff_proj", "q_proj", "v_proj"]
    tabom_layout = save_adapter(model, tmp_path / "tabom", layout="tabom")
    assert all(".layers." in k for k in load_file(str(tabom_layout / "adapter_model.safetensors")))
    with torch.no_grad():
        from_original = load_adapter(load_llada(d), out)(ids)
        from_tabom = load_adapter(load_llada(d), tabom_layout)(ids)
    torch.testing.assert_close(from_original, want, atol=0, rtol=0)
    torch.testing.assert_close(from_tabom, from_original, atol=0, rtol=0)
    assert (want - load_llada(d)(ids)).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["dream_prm12k", "llada_ling_coder"])
def test_release_adapter_configs_load_with_hand_merged_logits(tmp_path: Path, name: str) -> None:
    """The authors' adapter_config.json (r 16, alpha 16, dropout 0, q_proj/v_proj; Dream's task
    type FEATURE_EXTRACTION, LLaDA's CAUSAL_LM) beside weights keyed on the model's own tree load
    onto tabom's models with the logits of W + (alpha / r) B A merged by hand."""
    config_file = REFERENCE / f"{name}.adapter_config.json"
    if not config_file.exists():
        pytest.skip(f"{config_file} not present (the shared reference files are not on this machine)")
    release_cfg = json.loads(config_file.read_text())
    family = name.split("_")[0]
    if family == "dream":
        base = build_dream_checkpoint(tmp_path / "base")
        adapter = build_dream_adapter(tmp_path / "lora", base, r=16, alpha=16)
        loader, rename = load_dream, {}
    else:
        base = build_llada_checkpoint(tmp_path / "base")
        modules = {f"model.transformer.blocks.{i}.{m}": (32, 32 if m == "q_proj" else 16) for i in range(2) for m in ("q_proj", "v_proj")}
        adapter = build_lora_adapter(tmp_path / "lora", modules, base_model="GSAI-ML/LLaDA-8B-Instruct", r=16, alpha=16)
        loader = load_llada
        rename = {"model.transformer.blocks.": "model.layers.", ".q_proj": ".self_attn.q_proj", ".v_proj": ".self_attn.v_proj"}
    (adapter / "adapter_config.json").write_text(json.dumps(release_cfg))
    model = load_adapter(loader(base), adapter)
    want = merged_by_hand(base, adapter, rename, loader)
    ids = ids_batch(6)
    with torch.no_grad():
        got = model(ids)
        torch.testing.assert_close(got, want(ids), atol=1e-5, rtol=1e-5)
        assert (got - loader(base)(ids)).abs().max() > 1e-2


def test_adapter_keys_matching_neither_layout_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    d = build_llada_checkpoint(tmp_path / "llada")
    adapter = build_llada_adapter(tmp_path / "lora", d)
    w = load_file(str(adapter / "adapter_model.safetensors"))
    save_file({k.replace("model.transformer.blocks", "encoder.block"): v for k, v in w.items()},
              str(adapter / "adapter_model.safetensors"))
    model = load_llada(d)
    with pytest.raises(ValueError, match=r"adapter_model.safetensors: adapter key module encoder\.block\.\d\.\w+ matches neither LLaDA's layout"):
        load_adapter(model, adapter)
    assert not has_adapter(model)
    mixed = {k: v for k, v in w.items()}
    mixed["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"] = torch.zeros(4, 32)
    save_file(mixed, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(ValueError, match="mix LLaDA's module layout"):
        load_adapter(model, adapter)
    dream = build_dream_checkpoint(tmp_path / "dream")
    with pytest.raises(ValueError, match=r"model\.transformer\.blocks\.0\.\w+ matches neither layout of a dream model"):
        load_adapter(load_dream(dream), build_llada_adapter(tmp_path / "lora2", d))
