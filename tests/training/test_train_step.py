"""The train step on every objective: the loss falls on a fixed batch; empty batches still backprop."""

from __future__ import annotations

import random

import pytest
import torch

from tabom.models.adapters import attach_lora, disable_adapter
from tabom.models.tiny import build_tiny
from tabom.objectives import get_objective
from tabom.training.data import Row, collate
from tabom.training.step import loss_step, reference_from_context

from train_helpers import SHAPE, trajectory_obj

PARAMS = {"nelbo": {}, "trajectory": {"ce_window": 4}, "tabom": {"ce_window": 4, "rank_window": 4},
          "dinfer": {"max_span": 4}, "t3d": {"path_window": 4}}


def _model():
    torch.manual_seed(0)
    return attach_lora(build_tiny(seed=0, **SHAPE), r=4, alpha=4, dropout=0.0)


def _batch(model, n: int = 4):
    rng = random.Random(0)
    objs = [trajectory_obj(i, rng) for i in range(n)]
    rows = [Row(tuple(o["prompt_token_ids"]), tuple(o["response_token_ids"]), tuple(o["decoding_order"])) for o in objs]
    return collate(rows, model.pad_token_id, model.mask_token_id)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_loss_falls_on_a_fixed_batch(name: str) -> None:
    """Six AdamW steps at lr 1e-2 on one batch, the same noise each step: the loss goes down."""
    model = _model().train()
    objective = get_objective(name)
    cfg = objective.config(**PARAMS[name])
    batch = _batch(model)
    ref = reference_from_context(model, lambda: disable_adapter(model)) if objective.needs_reference else None
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(6):
        out = loss_step(model, batch, objective, cfg, torch.Generator().manual_seed(3), ref)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert losses[-1] < losses[0] - 1e-3, losses


def test_t3d_reference_is_the_frozen_base() -> None:
    """Before any update LoRA B = 0, so the policy equals the reference: DDO deltas are 0 and
    loss_ddo = -log s(0) - 0.5 log s(0) = 1.5 ln 2 = 1.0397."""
    model = _model()
    objective = get_objective("t3d")
    cfg = objective.config(path_window=4)
    out = loss_step(model, _batch(model), objective, cfg, torch.Generator().manual_seed(0),
                    reference_from_context(model, lambda: disable_adapter(model)))
    assert float(out.metrics["delta_real"]) == pytest.approx(0.0, abs=1e-6)
    assert float(out.metrics["loss_ddo"]) == pytest.approx(1.5 * 0.693147, abs=1e-4)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_batch_with_nothing_to_supervise_still_backprops(name: str) -> None:
    """Every response step is -1 (never decoded) and, for NELBO, the response is empty of
    maskable tokens: the loss is exactly 0 yet every LoRA weight receives a (zero) gradient."""
    model = _model()
    objective = get_objective(name)
    batch = _batch(model)
    batch = type(batch)(batch.input_ids, batch.attention_mask,
                        batch.response_mask if name != "nelbo" else torch.zeros_like(batch.response_mask),
                        torch.full_like(batch.steps, -1), batch.mask_token_id)
    ref = reference_from_context(model, lambda: disable_adapter(model)) if objective.needs_reference else None
    out = loss_step(model, batch, objective, objective.config(**PARAMS[name]), torch.Generator().manual_seed(0), ref)
    assert float(out.loss.detach()) == 0.0
    out.loss.backward()
    lora = [p for n, p in model.named_parameters() if ".lora_" in n]
    assert lora and all(p.grad is not None for p in lora)
