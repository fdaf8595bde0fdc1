"""load_eval_model: a base model plus a LoRA adapter, merged by default, computing the same function."""

from __future__ import annotations

import pytest
import torch

from tabom.eval.model_spec import load_eval_model
from tabom.models import build_tiny, save
from tabom.models.adapters import attach_lora, has_adapter, save_adapter

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
             intermediate_size=64, max_position_embeddings=64)


def test_merged_and_unmerged_adapters_give_the_same_logits_and_differ_from_the_base(tmp_path):
    torch.set_num_threads(1)
    base_dir = save(build_tiny(seed=0, **SMALL), tmp_path / "base")
    model = attach_lora(build_tiny(seed=0, **SMALL), r=4, alpha=8)
    with torch.no_grad():  # a non-zero update, so the adapter changes the function
        for name, p in model.backbone.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    adapter = save_adapter(model, tmp_path / "adapter")

    ids = torch.randint(5, 60, (2, 12), generator=torch.Generator().manual_seed(2))
    merged = load_eval_model(str(base_dir), str(adapter), device="cpu")
    wrapped = load_eval_model(str(base_dir), str(adapter), merge=False, device="cpu")
    base = load_eval_model(str(base_dir), device="cpu")
    assert not has_adapter(merged) and has_adapter(wrapped)
    with torch.inference_mode():
        a, b, c = merged(ids), wrapped(ids), base(ids)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert (a - c).abs().max() > 1e-3


def test_a_folder_without_adapter_config_is_a_clear_error(tmp_path):
    base_dir = save(build_tiny(seed=0, **SMALL), tmp_path / "base")
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        load_eval_model(str(base_dir), str(tmp_path))
