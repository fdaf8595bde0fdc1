"""Every registered objective runs make_inputs -> packed logits -> loss -> backward on a tiny
mock model (embedding + linear head, logits only at the requested positions)."""

from __future__ import annotations

import pytest
import torch

from objective_batches import gen, make_batch
from tabom.objectives import OBJECTIVES, attach_reference, get_objective

VOCAB = 120


class MockModel(torch.nn.Module):
    """Position-wise model: logits[p] depends on input_ids[p] only; returns packed (N, V)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, 8)
        self.head = torch.nn.Linear(8, VOCAB)

    def forward(self, input_ids, attention_mask, positions):
        return self.head(self.emb(input_ids))[positions]  # (N, V)


def _batch():
    return make_batch([[1, 2], [3]], [[0, 1, 2, 3, 3, 4, 5, 6], [1, 0, 2, 2, -1]], left_pad=True)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_end_to_end(name):
    torch.manual_seed(0)
    obj = get_objective(name)
    small = {"nelbo": {}, "trajectory": {"ce_window": 2}, "tabom": {"ce_window": 2, "rank_window": 3},
             "dinfer": {"max_span": 2}, "t3d": {"path_window": 4}}[name]
    cfg = obj.config(**small)
    model = MockModel()
    noised = obj.make_inputs(_batch(), gen(1), cfg)
    if obj.needs_reference:
        with torch.no_grad():
            ref = model(noised.input_ids, noised.attention_mask, positions=noised.positions)
        noised = attach_reference(noised, ref, gen(2), cfg)
    logits = model(noised.input_ids, noised.attention_mask, positions=noised.positions)
    out = obj.loss(logits, noised, cfg)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert all(v.dim() == 0 and not v.requires_grad for v in out.metrics.values())
    out.loss.backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0


def test_global_variants_via_config_flag():
    assert get_objective("tabom").config(global_window=True).global_window
    assert get_objective("trajectory").config(global_window=True).global_window


def test_unknown_names_and_fields():
    with pytest.raises(ValueError, match="unknown name"):
        get_objective("sft")
    with pytest.raises(ValueError, match="margn"):
        get_objective("tabom").config(margn=0.1)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_needs_trajectories_is_what_the_objective_reads(name):
    """An objective marked `needs_trajectories` supervises nothing when no response token has a
    decode step; the others (NELBO) still do."""
    obj = get_objective(name)
    small = {"nelbo": {}, "trajectory": {"ce_window": 2}, "tabom": {"ce_window": 2, "rank_window": 3},
             "dinfer": {"max_span": 2}, "t3d": {"path_window": 4}}[name]
    no_steps = make_batch([[1, 2], [3]], [[-1] * 8, [-1] * 5], left_pad=True)
    noised = obj.make_inputs(no_steps, gen(1), obj.config(**small))
    assert bool(noised.row_valid.any()) is (not obj.needs_trajectories)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_recipes_ask_the_registry_what_data_an_objective_needs(name):
    """A recipe pairing a built-in task family with an objective that needs trajectories is one
    error naming the data; the others load."""
    from tabom.config import ConfigError, load_recipe

    args = [f"objective.name={name}"]  # tiny_sft_gt reads the math_chain task family
    if get_objective(name).needs_trajectories:
        with pytest.raises(ConfigError, match=f"data: objective '{name}' needs trajectories"):
            load_recipe("tiny_sft_gt", args)
    else:
        assert load_recipe("tiny_sft_gt", args).objective.name == name
