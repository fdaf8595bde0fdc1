"""Dream checkpoints in their original layout load into tabom and compute Dream's maths.

The reference below is written from the Dream architecture (Qwen2 run without a causal mask):
    x = E[ids];  per layer:  h = rms(x) * g1;  q, k, v = h Wq^T + bq, h Wk^T + bk, h Wv^T + bv
    q, k <- RoPE(q), RoPE(k)   with angle p * theta^(-2i/d), halves rotated: (a, b) -> (a cos - b sin, b cos + a sin)
    k, v repeated to every query head of their group (GQA);  o = softmax(q k^T / sqrt(d)) v  (no mask)
    x <- x + o Wo^T;  h = rms(x) * g2;  x <- x + (silu(h Wg^T) * (h Wu^T)) Wd^T
    logits = rms(x) * gN  W_head^T,  then Dream's shift: out[:, 0] = logits[:, 0], out[:, p] = logits[:, p - 1]
It reads the weights by their stored (Dream) names, so it also checks the name mapping.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from checkpoint_builders import build_dream_checkpoint, read_weights
from tabom.models import load
from tabom.models.dream import load_dream

torch.set_num_threads(1)


def rms(x: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def rope(t: torch.Tensor, theta: float) -> torch.Tensor:
    """t (B, heads, L, d) rotated by position."""
    d, L = t.shape[-1], t.shape[-2]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv[None]  # (L, d/2)
    cos, sin = torch.cos(ang).to(t.dtype), torch.sin(ang).to(t.dtype)
    a, b = t[..., : d // 2], t[..., d // 2 :]
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)


def dream_reference(w: dict[str, torch.Tensor], cfg: dict, ids: torch.Tensor) -> torch.Tensor:
    """Dream's logits (B, L, V) after its shift, computed from stored tensors."""
    B, L = ids.shape
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, theta = H // nh, cfg["rms_norm_eps"], cfg["rope_theta"]
    x = w["model.embed_tokens.weight"][ids]  # (B, L, H)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, w[p + "input_layernorm.weight"], eps)

        def proj(name: str, heads: int) -> torch.Tensor:
            y = h @ w[p + f"self_attn.{name}.weight"].T + w[p + f"self_attn.{name}.bias"]
            return y.view(B, L, heads, hd).transpose(1, 2)  # (B, heads, L, hd)

        q, k, v = rope(proj("q_proj", nh), theta), rope(proj("k_proj", nkv), theta), proj("v_proj", nkv)
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1) @ v  # (B, nh, L, hd)
        x = x + att.transpose(1, 2).reshape(B, L, H) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
        x = x + (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    logits = rms(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T  # (B, L, V)
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dream_checkpoint(tmp_path_factory.mktemp("dream"))


@pytest.fixture(scope="module")
def dream(dream_dir: Path):
    return load_dream(dream_dir)


def ids_batch(seed: int = 0, B: int = 2, L: int = 9) -> torch.Tensor:
    return torch.randint(0, 290, (B, L), generator=torch.Generator().manual_seed(seed))


def test_ids_family_and_shapes(dream, dream_dir: Path) -> None:
    """Special ids come from config.json: after the 300 BPE tokens, <|endoftext|> = 300 (eos = pad), <|mask|> = 304."""
    cfg = json.loads((dream_dir / "config.json").read_text())
    assert (dream.mask_token_id, dream.eos_token_id, dream.pad_token_id) == (304, 300, 300)
    assert dream.mask_token_id == cfg["mask_token_id"]
    assert dream.family == "dream" and dream.logits_shift and dream.default_strategy == "entropy"
    assert dream.vocab_size == 320
    assert type(dream.backbone).__name__ == "Qwen2ForCausalLM"
    assert dream(ids_batch()).shape == (2, 9, 320)
    assert dream(ids_batch(), positions=torch.tensor([[1, 4], [0, 8]])).shape == (2, 2, 320)


def test_forward_reproduces_dream_maths(dream, dream_dir: Path) -> None:
    """tabom's forward == the hand-written Dream reference (incl. GQA, q/k/v bias, shift) to 1e-5."""
    cfg = json.loads((dream_dir / "config.json").read_text())
    ids = ids_batch()
    with torch.no_grad():
        got = dream(ids)
    want = dream_reference(read_weights(dream_dir), cfg, ids)
    assert want.abs().max() > 1.0  # the check is not vacuous
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_padding_keys_are_ignored(dream, dream_dir: Path) -> None:
    """Row 0 padded at its last 3 positions: its first 6 logits equal the reference on the 6 real tokens."""
    cfg = json.loads((dream_dir / "config.json").read_text())
    ids = ids_batch(seed=3)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[0, 6:] = False
    with torch.no_grad():
        got = dream(ids, mask)
    want = dream_reference(read_weights(dream_dir), cfg, ids[:1, :6])
    torch.testing.assert_close(got[:1, :6], want, atol=1e-5, rtol=1e-5)


def test_bidirectional_and_shifted(dream) -> None:
    """A later token changes an earlier logit; logits[:, p] is the raw head output at p - 1."""
    ids = ids_batch(seed=1)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 290
    with torch.no_grad():
        a, b = dream(ids), dream(changed)
        raw = dream.backbone(input_ids=ids).logits  # (B, L, V), unshifted
    assert (a[:, 1] - b[:, 1]).abs().max() > 1e-3
    torch.testing.assert_close(a[:, 1:], raw[:, :-1])
    torch.testing.assert_close(a[:, 0], raw[:, 0])


def test_sharded_equals_unsharded_and_device_maps(tmp_path: Path, dream, dream_dir: Path) -> None:
    """3 shards + index load to the same logits; device_map "auto", "cpu" and {"": "cpu"} all work."""
    sharded = build_dream_checkpoint(tmp_path / "sharded", sharded=True)
    assert len(list(sharded.glob("model-*.safetensors"))) == 3
    ids = ids_batch()
    with torch.no_grad():
        want = dream(ids)
        for device_map in (None, "auto", "cpu", {"": "cpu"}):
            got = load_dream(sharded, device_map=device_map)(ids)
            torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_dtype_bfloat16(dream_dir: Path, dream) -> None:
    """Every parameter is bf16 (cast while reading); logits stay close to the fp32 ones."""
    m = load_dream(dream_dir, dtype=torch.bfloat16)
    assert {p.dtype for p in m.parameters()} == {torch.bfloat16}
    assert not [n for n, p in m.named_parameters() if p.device.type == "meta"]
    ids = ids_batch()
    with torch.no_grad():
        ref, got = dream(ids), m(ids).float()
    assert (got - ref).abs().max() < 0.05 * ref.abs().max()


def test_tokenizer_and_chat_template_without_remote_code(dream, dream_dir: Path) -> None:
    """The folder's *.py raise on import, yet the tokenizer loads (as Qwen2Tokenizer) with its template."""
    assert "raise RuntimeError" in (dream_dir / "tokenization_dream.py").read_text()
    tok = dream.tokenizer
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert tok.encode("the cat<|mask|>")[-1] == dream.mask_token_id
    assert dream.chat_template
    prompt = dream.encode_prompt("hello world")
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    assert prompt[0] == im_start and prompt.count(im_start) == 2  # user turn + assistant header
    assert dream.decode(tok.encode("hello world") + [dream.eos_token_id, 5]) == "hello world"


def test_generic_load_dispatches_to_dream(dream_dir: Path) -> None:
    m = load(dream_dir)
    assert m.family == "dream" and m.name == str(dream_dir)


def test_missing_shard_is_named(tmp_path: Path) -> None:
    d = build_dream_checkpoint(tmp_path / "d", sharded=True)
    (d / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model.safetensors.index.json.*model-00002-of-00003"):
        load_dream(d)


def test_missing_and_unexpected_parameters_are_named(tmp_path: Path) -> None:
    from checkpoint_builders import write_weights

    d = build_dream_checkpoint(tmp_path / "d")
    w = read_weights(d)
    del w["model.layers.1.mlp.up_proj.weight"]
    write_weights(d, w)
    with pytest.raises(ValueError, match=r"model.safetensors: 1 missing parameter.*model.layers.1.mlp.up_proj.weight"):
        load_dream(d)
    w["model.layers.1.mlp.up_proj.weight"] = torch.zeros(48, 32)
    w["model.layers.9.extra.weight"] = torch.zeros(2)
    write_weights(d, w)
    with pytest.raises(ValueError, match=r"unexpected parameter.*model.layers.9.extra.weight \(in model.safetensors\)"):
        load_dream(d)


def test_pickles_and_bad_config_are_refused(tmp_path: Path) -> None:
    d = build_dream_checkpoint(tmp_path / "d")
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"pytorch_model.bin.*safetensors only"):
        load_dream(d)
    cfg_path = d / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["num_key_value_heads"] = 3
    cfg_path.write_text(json.dumps(cfg, indent=2))
    line = next(i for i, s in enumerate(cfg_path.read_text().splitlines(), 1) if '"num_key_value_heads"' in s)
    with pytest.raises(ValueError, match=rf"config.json:{line}: num_key_value_heads: 3 must divide"):
        load_dream(d)
