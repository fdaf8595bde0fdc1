"""The rotary base that reaches the attention is the checkpoint's, and an unsupported transformers is refused.

With transformers 4.x, `rope_parameters` was accepted and ignored (base 10,000 instead of Dream's
1,000,000): a Dream checkpoint loaded and computed logits off by 1.88. These tests read the (cos, sin)
that the first attention layer actually receives and compare them with the checkpoint's base:
    cos[p, i] = cos(p * theta ** (-2 (i mod d/2) / d))
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from checkpoint_builders import build_dream_checkpoint, build_llada_checkpoint
from tabom.models import load
from tabom.models.compat import UnsupportedTransformers, require_transformers


def _cos_reaching_attention(model, length: int = 8) -> torch.Tensor:
    """The cos table (L, d) that layer 0's attention is called with."""
    seen: dict[str, torch.Tensor] = {}

    def grab(_module, args, kwargs):
        cos, _sin = kwargs["position_embeddings"] if "position_embeddings" in kwargs else args[1]
        seen["cos"] = cos[0].detach().double()

    attn = model.backbone.model.layers[0].self_attn
    handle = attn.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        model(torch.zeros(1, length, dtype=torch.long))
    finally:
        handle.remove()
    return seen["cos"]


def _expected_cos(theta: float, head_dim: int, length: int) -> torch.Tensor:
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (d/2,)
    ang = torch.arange(length, dtype=torch.float64)[:, None] * inv[None]  # (L, d/2)
    return torch.cos(torch.cat([ang, ang], dim=-1))  # (L, d)


@pytest.mark.parametrize("family, builder, theta", [
    ("dream", build_dream_checkpoint, 1_000_000.0),
    ("llada", build_llada_checkpoint, 500_000.0),
])
def test_checkpoint_rope_theta_reaches_attention(tmp_path: Path, family, builder, theta) -> None:
    ckpt = builder(tmp_path / family)
    assert json.loads((ckpt / "config.json").read_text())["rope_theta"] == theta
    model = load(str(ckpt), dtype="float32", device="cpu")
    cos = _cos_reaching_attention(model)
    head_dim = cos.shape[-1]
    torch.testing.assert_close(cos, _expected_cos(theta, head_dim, cos.shape[0]), atol=1e-6, rtol=0)
    # and it is not the library default that transformers 4.x silently fell back to
    assert not torch.allclose(cos, _expected_cos(10_000.0, head_dim, cos.shape[0]), atol=1e-3)


@pytest.mark.parametrize("version", ["4.57.0", "4.45.2", "6.0.0", "6.1.0.dev0"])
def test_unsupported_transformers_is_refused_with_one_line(version: str) -> None:
    with pytest.raises(UnsupportedTransformers, match=rf"transformers {version} is installed; tabom needs >=5\.0\.0,<6\.0\.0"):
        require_transformers(version)


@pytest.mark.parametrize("version", ["5.0.0", "5.25.0", "5.30.0.dev0"])
def test_supported_transformers_passes(version: str) -> None:
    require_transformers(version)


def test_installed_transformers_is_supported() -> None:
    require_transformers()  # the suite itself runs on a supported version


def test_load_refuses_an_unsupported_transformers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    ckpt = build_dream_checkpoint(tmp_path / "dream")
    monkeypatch.setattr(transformers, "__version__", "4.57.0")
    with pytest.raises(UnsupportedTransformers, match="4.57.0"):
        load(str(ckpt), dtype="float32", device="cpu")


def test_a_tabom_folder_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in tiny model is a tabom folder (diffusion.json + transformers config)."""
    import transformers

    monkeypatch.setattr(transformers, "__version__", "4.57.0")
    with pytest.raises(UnsupportedTransformers, match="4.57.0"):
        load("tiny", dtype="float32", device="cpu")
