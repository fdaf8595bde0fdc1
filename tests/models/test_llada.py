"""LLaDA checkpoints in their original layout load into tabom and compute LLaDA's maths.

The reference below follows LLaDA's `LLaDALlamaBlock` (`block_type: llama`, `activation_type: silu`),
reading tensors by their stored names under `model.transformer`:
    x = wte[ids];  per block:  h = rms(x) * attn_norm;  q, k, v = h Wq^T, h Wk^T, h Wv^T   (no biases)
    RoPE on q, k: angles p * theta^(-2i/d) duplicated to (f, f); rotate_half(t) = (-t2, t1) with t
        viewed as (..., 2, d/2);  t <- t cos + rotate_half(t) sin
    k, v repeat_interleave'd to the query heads;  o = softmax(q k^T / sqrt(d)) v  (no causal mask)
    x <- x + o attn_out^T;  h = rms(x) * ff_norm;  x <- x + (silu(h ff_proj^T) * (h up_proj^T)) ff_out^T
    logits = rms(x) * ln_f  @ (transformer.ff_out, or wte when weight_tying)^T   — no shift.
So `ff_proj` is the activated gate and `up_proj` the multiplier; swapping them fails the 1e-5 check.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from checkpoint_builders import build_llada_checkpoint, read_weights
from tabom.models import load
from tabom.models.llada import load_llada, weight_mapping

torch.set_num_threads(1)


def rms(x: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def llada_rope(t: torch.Tensor, theta: float) -> torch.Tensor:
    """t (B, heads, T, hs), LLaDA's formulation."""
    B, nh, T, hs = t.shape
    inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.float) / hs))
    freqs = torch.einsum("i,j->ij", torch.arange(T, dtype=torch.float), inv_freq)  # (T, hs/2)
    pos = torch.cat([freqs, freqs], dim=-1)  # (T, hs)
    x1, x2 = t.view(B, nh, T, 2, hs // 2).unbind(dim=-2)
    rotated = torch.cat([-x2, x1], dim=-1)
    return t * pos.cos() + rotated * pos.sin()


def llada_reference(w: dict[str, torch.Tensor], cfg: dict, ids: torch.Tensor) -> torch.Tensor:
    """LLaDA's logits (B, T, embedding_size) from stored tensors."""
    B, T = ids.shape
    C, nh, nkv = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hs, eps, theta = C // nh, cfg["rms_norm_eps"], cfg["rope_theta"]
    pre = "model.transformer."
    x = w[pre + "wte.weight"][ids]  # (B, T, C)
    for i in range(cfg["n_layers"]):
        p = f"{pre}blocks.{i}."
        h = rms(x, w[p + "attn_norm.weight"], eps)
        q = (h @ w[p + "q_proj.weight"].T).view(B, T, nh, hs).transpose(1, 2)
        k = (h @ w[p + "k_proj.weight"].T).view(B, T, nkv, hs).transpose(1, 2)
        v = (h @ w[p + "v_proj.weight"].T).view(B, T, nkv, hs).transpose(1, 2)
        q, k = llada_rope(q, theta), llada_rope(k, theta)
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs), dim=-1) @ v  # (B, nh, T, hs)
        x = x + att.transpose(1, 2).reshape(B, T, C) @ w[p + "attn_out.weight"].T
        h = rms(x, w[p + "ff_norm.weight"], eps)
        act = torch.nn.functional.silu(h @ w[p + "ff_proj.weight"].T) * (h @ w[p + "up_proj.weight"].T)
        x = x + act @ w[p + "ff_out.weight"].T
    head = w[pre + "wte.weight"] if cfg["weight_tying"] else w[pre + "ff_out.weight"]
    return rms(x, w[pre + "ln_f.weight"], eps) @ head.T


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_llada_checkpoint(tmp_path_factory.mktemp("llada"))


@pytest.fixture(scope="module")
def llada(llada_dir: Path):
    return load_llada(llada_dir)


def ids_batch(seed: int = 0, B: int = 2, T: int = 9) -> torch.Tensor:
    return torch.randint(0, 300, (B, T), generator=torch.Generator().manual_seed(seed))


def test_ids_family_and_shapes(llada, llada_dir: Path) -> None:
    """After 300 BPE tokens come <|startoftext|>=300, <|endoftext|>=301 (eos = pad), ..., <|mdm_mask|>=305."""
    assert (llada.mask_token_id, llada.eos_token_id, llada.pad_token_id) == (305, 301, 301)
    assert llada.family == "llada" and not llada.logits_shift and llada.default_strategy == "confidence"
    assert llada.vocab_size == 320  # embedding_size, as LLaDA's wte / ff_out rows
    assert type(llada.backbone).__name__ == "LlamaForCausalLM"
    assert llada.backbone.config.num_key_value_heads == 2
    assert llada(ids_batch()).shape == (2, 9, 320)


def test_forward_reproduces_llada_maths(llada, llada_dir: Path) -> None:
    """tabom's forward == the hand-written LLaDA reference (GQA, SwiGLU order, RoPE) to 1e-5."""
    cfg = json.loads((llada_dir / "config.json").read_text())
    ids = ids_batch()
    with torch.no_grad():
        got = llada(ids)
    want = llada_reference(read_weights(llada_dir), cfg, ids)
    assert want.abs().max() > 1.0
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_swapping_gate_and_up_breaks_the_match(llada, llada_dir: Path) -> None:
    """Control for the test above: with ff_proj and up_proj exchanged the reference moves away."""
    cfg = json.loads((llada_dir / "config.json").read_text())
    w = read_weights(llada_dir)
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        w[p + "ff_proj.weight"], w[p + "up_proj.weight"] = w[p + "up_proj.weight"], w[p + "ff_proj.weight"]
    ids = ids_batch()
    with torch.no_grad():
        assert (llada(ids) - llada_reference(w, cfg, ids)).abs().max() > 1e-2


def test_weight_tying_and_sharding(tmp_path: Path) -> None:
    """weight_tying: no transformer.ff_out stored, the head is wte; 2 shards + index load the same maths."""
    d = build_llada_checkpoint(tmp_path / "tied", weight_tying=True, sharded=True, kv_heads=4)
    cfg = json.loads((d / "config.json").read_text())
    assert "model.transformer.ff_out.weight" not in read_weights(d)
    assert len(list(d.glob("model-*.safetensors"))) == 2
    m = load_llada(d)
    assert m.backbone.lm_head.weight is m.backbone.model.embed_tokens.weight
    ids = ids_batch(seed=2)
    with torch.no_grad():
        torch.testing.assert_close(m(ids), llada_reference(read_weights(d), cfg, ids), atol=1e-5, rtol=1e-5)


def test_bidirectional_and_unshifted(llada) -> None:
    ids = ids_batch(seed=1)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 300
    with torch.no_grad():
        a, b = llada(ids), llada(changed)
        raw = llada.backbone(input_ids=ids).logits
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-3
    torch.testing.assert_close(a, raw)


def test_dtype_and_generic_load(llada_dir: Path) -> None:
    m = load(llada_dir, dtype="bfloat16")
    assert m.family == "llada" and {p.dtype for p in m.parameters()} == {torch.bfloat16}


def test_tokenizer_and_chat_template(llada) -> None:
    """encode_prompt applies the template: <|startoftext|>, a user turn closed by <|eot_id|>, an assistant header."""
    tok = llada.tokenizer
    special = {s: tok.convert_tokens_to_ids(s) for s in ("<|startoftext|>", "<|start_header_id|>", "<|eot_id|>")}
    assert tok.convert_tokens_to_ids("<|mdm_mask|>") == llada.mask_token_id
    prompt = llada.encode_prompt("hello world")
    assert prompt[0] == special["<|startoftext|>"]
    headers = [i for i, t in enumerate(prompt) if t == special["<|start_header_id|>"]]
    assert len(headers) == 2 and prompt.count(special["<|eot_id|>"]) == 1
    assert headers[0] < prompt.index(special["<|eot_id|>"]) < headers[1]
    assert tok.decode(prompt[headers[1] + 1 :], skip_special_tokens=True).strip() == "assistant"


def test_mapping_covers_every_stored_tensor(llada_dir: Path) -> None:
    """Every stored name is mapped (2 layers x 9 + wte + ln_f + ff_out = 21) onto distinct Llama names."""
    mapping = weight_mapping(2, weight_tying=False)
    assert set(mapping) == set(read_weights(llada_dir))
    assert len(set(mapping.values())) == 21
    assert mapping["model.transformer.blocks.1.ff_proj.weight"] == "model.layers.1.mlp.gate_proj.weight"
    assert mapping["model.transformer.blocks.1.ff_out.weight"] == "model.layers.1.mlp.down_proj.weight"
    assert mapping["model.transformer.ff_out.weight"] == "lm_head.weight"


def test_unsupported_config_and_missing_tensor(tmp_path: Path) -> None:
    from checkpoint_builders import write_weights

    d = build_llada_checkpoint(tmp_path / "d")
    w = read_weights(d)
    del w["model.transformer.blocks.0.attn_out.weight"]
    write_weights(d, w)
    with pytest.raises(ValueError, match=r"missing parameter.*model.transformer.blocks.0.attn_out.weight"):
        load_llada(d)
    cfg_path = d / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["block_type"] = "sequential"
    cfg_path.write_text(json.dumps(cfg, indent=2))
    line = next(i for i, s in enumerate(cfg_path.read_text().splitlines(), 1) if '"block_type"' in s)
    with pytest.raises(ValueError, match=rf"config.json:{line}: block_type: 'sequential' is not supported"):
        load_llada(d)
