"""The computed memory table: parameter counts of real shapes, the activation formula against a
measurement at a shape it was not fitted on, and the line the trainer prints."""

from __future__ import annotations

import torch

from tabom.models.tiny import build_tiny
from tabom.training.memory import ModelShape, activation_bytes, estimate, run_note, saved_bytes, shape_of


def test_parameter_counts_of_the_shapes() -> None:
    """The tiny model's count equals its parameters; the 7B shapes give the published sizes."""
    model = build_tiny(seed=0, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=96)
    assert shape_of(model).params == sum(p.numel() for p in model.parameters())
    assert round(ModelShape.dream_7b().params / 1e9, 2) == 7.62
    assert round(ModelShape.llada_8b().params / 1e9, 2) == 8.02


def test_activation_formula_matches_a_measurement_at_a_new_shape() -> None:
    """H 192, I 320, L 48 with padding, 3 layers, every weight trainable: within 8 % (5.4 % here,
    the part outside the decoder layers, which shrinks as layers are added)."""
    shape = dict(hidden_size=192, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4,
                 intermediate_size=320, max_position_embeddings=64)
    model = build_tiny(seed=0, **shape).to(torch.bfloat16)
    for p in model.parameters():
        p.requires_grad_(True)
    ids = torch.randint(4, 90, (2, 48))
    attn = torch.ones(2, 48, dtype=torch.bool)
    attn[1, :5] = False
    measured = saved_bytes(model, lambda: model.hidden(ids, attn))
    computed = activation_bytes(shape_of(model), lora=False, checkpointing=False, rows=2, seq_len=48, supervised=0)
    assert abs(measured - computed) / measured < 0.08  # the final norm and rotary tables are outside the layers


def test_estimate_orders_the_configurations() -> None:
    """FSDP over 8 holds less than DDP, checkpointing less than none; full FT DDP at 7B is > 80 GB."""
    shape = ModelShape.dream_7b()

    def total(**kw: object) -> float:
        return estimate(shape, world=8, rows=4, seq_len=512, supervised=256, **kw).total_gb  # type: ignore[arg-type]

    assert total(lora=False, mode="ddp", checkpointing=True) > 80
    assert total(lora=False, mode="fsdp", checkpointing=True) < 40
    assert total(lora=True, mode="fsdp", checkpointing=False) < total(lora=True, mode="ddp", checkpointing=False)
    assert total(lora=False, mode="fsdp", checkpointing=True) < total(lora=False, mode="fsdp", checkpointing=False)


def test_run_note_names_every_term() -> None:
    """The trainer's line: the terms, the shape of the batch, the mode."""
    model = build_tiny(seed=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=2, intermediate_size=64)
    line = run_note(model, lora=False, mode="fsdp", world=2, checkpointing=True, rows=4, seq_len=40, supervised=16)
    for part in ("computed", "weights", "gradients", "optimizer", "activations", "4 x 40 tokens", "fsdp",
                 "checkpointing on"):
        assert part in line


def test_the_docs_table_is_the_computed_one() -> None:
    """docs/training.md holds `table_7b()` as the code computes it today."""
    from pathlib import Path

    from tabom.training.memory import table_7b

    docs = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    assert table_7b() in docs
