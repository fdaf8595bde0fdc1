"""The DiffusionLM adapter: bidirectional attention, padding, packed positions, shift, save/load."""

from __future__ import annotations

import torch

from tabom.models import DiffusionLM, build_tiny, load, save

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
             intermediate_size=64, max_position_embeddings=64)


def small(seed: int = 0) -> DiffusionLM:
    torch.manual_seed(seed)
    return build_tiny(seed=seed, **SMALL).eval()


def test_attention_is_bidirectional() -> None:
    """Changing the last token changes the logits at the first position (a causal model would not)."""
    m = small()
    x = torch.randint(5, 100, (2, 12))
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1 - 5) % 95 + 5
    with torch.no_grad():
        diff = (m(x)[:, 0] - m(y)[:, 0]).abs().max()
    assert diff > 1e-4


def test_left_padding_does_not_change_logits() -> None:
    m = small()
    x = torch.randint(5, 100, (1, 10))
    padded = torch.cat([torch.full((1, 3), m.pad_token_id), x], dim=1)
    attn = torch.cat([torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 10, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        alone = m(x)
        with_pad = m(padded, attn)[:, 3:]
    torch.testing.assert_close(with_pad, alone, atol=1e-5, rtol=1e-4)


def test_positions_mask_and_indices_match_full_logits() -> None:
    m = small()
    x = torch.randint(5, 100, (2, 9))
    sel = torch.zeros(2, 9, dtype=torch.bool)
    sel[0, 4] = True
    sel[1, [2, 8]] = True
    with torch.no_grad():
        full = m(x)  # (2, 9, V)
        packed = m(x, positions=sel)  # (3, V)
        idx = m(x, positions=torch.tensor([[1, 4], [0, 8]]))  # (2, 2, V)
    assert packed.shape == (3, m.vocab_size)
    torch.testing.assert_close(packed, full[sel])
    torch.testing.assert_close(idx[0], full[0, [1, 4]])
    torch.testing.assert_close(idx[1], full[1, [0, 8]])


def test_positions_never_build_full_logits() -> None:
    """With positions, the LM head sees only the selected hidden states."""
    m = small()
    seen: list[tuple[int, ...]] = []
    head = m.backbone.get_output_embeddings()
    hook = head.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)))
    sel = torch.zeros(3, 20, dtype=torch.bool)
    sel[:, -2:] = True
    with torch.no_grad():
        m(torch.randint(5, 100, (3, 20)), positions=sel)
    hook.remove()
    assert seen == [(6, 32)]


def test_logit_shift_moves_hidden_states_one_right() -> None:
    m = small()
    x = torch.randint(5, 100, (2, 7))
    with torch.no_grad():
        plain = m(x)
        m.logits_shift = True
        shifted = m(x)
    torch.testing.assert_close(shifted[:, 1:], plain[:, :-1])
    torch.testing.assert_close(shifted[:, 0], plain[:, 0])


def test_save_load_roundtrip(tmp_path) -> None:
    m = small()
    save(m, tmp_path / "ckpt")
    again = load(tmp_path / "ckpt", device="cpu")
    x = torch.randint(5, 100, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(again(x), m(x))
    assert (again.mask_token_id, again.eos_token_id, again.pad_token_id) == (1, 2, 0)
    assert again.family == "tiny" and again.default_strategy == "entropy"
    assert (tmp_path / "ckpt" / "model.safetensors").exists()


def test_encode_decode_text() -> None:
    m = small()
    ids = m.encode_prompt("2+3=?")
    assert ids[0] == 3 and ids[-1] == 4 and len(ids) == 7
    assert m.decode(m.tokenizer.encode("5\n#### 5", add_special_tokens=False) + [2, 9, 9]) == "5\n#### 5"


def test_load_errors_name_the_path(tmp_path) -> None:
    import pytest

    with pytest.raises(FileNotFoundError, match="never downloads"):
        load(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ValueError, match="model_type"):
        load(tmp_path / "bad")
