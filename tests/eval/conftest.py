"""Shared fixtures of the evaluation tests: test-sized random tiny models, in memory and on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

TINY_SHAPE: dict[str, int] = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                              "num_key_value_heads": 2, "intermediate_size": 64}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """A randomly initialised 2-layer, 32-dim tiny DLM."""
    from tabom.models import build_tiny

    return build_tiny(seed=0, **TINY_SHAPE)


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two random tiny models saved as tabom folders, and a LoRA adapter (non-zero B) on the first."""
    from tabom.models import build_tiny, save
    from tabom.models.adapters import attach_lora, save_adapter

    root = tmp_path_factory.mktemp("tiny")
    out = {"a": save(build_tiny(seed=0, **TINY_SHAPE), root / "a"), "b": save(build_tiny(seed=1, **TINY_SHAPE), root / "b")}
    with torch.random.fork_rng():  # peft draws lora_A from the global RNG, which earlier tests leave anywhere
        torch.manual_seed(0)
        with_lora = attach_lora(build_tiny(seed=0, **TINY_SHAPE), r=4, alpha=4)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in with_lora.backbone.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen))
    out["adapter"] = save_adapter(with_lora, root / "adapter")
    return out
