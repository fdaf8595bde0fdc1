"""The train step: build the objective's input, one forward at the scored positions, the loss.

    out = loss_step(model, batch, objective, obj_cfg, generator)   # LossOutput
    (out.loss / grad_accum).backward()

The objective is a pair of pure functions (`tabom.objectives`); this file only wires them to the
model. Logits are computed only where the loss reads them (`positions=noised.positions`, packed
(N, V)). T3D also needs the frozen reference's logits on the same input: ``reference`` is a
context manager factory under which ``model`` acts as the reference (LoRA disabled), or a
callable returning a separate frozen model's logits.

A batch with nothing to supervise (N = 0) still yields a loss connected to every trainable
parameter (an exact 0), so each rank of a DDP run does its backward and none waits forever.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable

import torch
from torch import nn

from tabom.objectives.combine import Objective
from tabom.objectives.types import BatchLike, LossOutput

ReferenceFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(input_ids (B, L), attention_mask (B, L), positions (B, L) bool) -> reference logits (N, V)."""


def reference_from_context(model: nn.Module, disabled: Callable[[], AbstractContextManager[Any]]) -> ReferenceFn:
    """A reference forward: ``model`` run without grad inside ``disabled()`` (LoRA switched off)."""

    def forward(ids: torch.Tensor, attn: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), disabled():
            return model(ids, attn, positions=positions)

    return forward


def loss_step(
    model: nn.Module,
    batch: BatchLike,
    objective: Objective,
    obj_cfg: Any,
    generator: torch.Generator | None,
    reference: ReferenceFn | None = None,
) -> LossOutput:
    """Objective input -> packed logits (N, V) -> LossOutput (loss with grad, detached metrics)."""
    noised = objective.make_inputs(batch, generator, obj_cfg)
    if objective.needs_reference:
        if reference is None:
            raise ValueError(f"objective {objective.name}: needs a reference model forward")
        from tabom.objectives.t3d import attach_reference

        ref_logits = reference(noised.input_ids, noised.attention_mask, noised.positions)  # (N, V)
        noised = attach_reference(noised, ref_logits, generator, obj_cfg)
    logits = model(noised.input_ids, noised.attention_mask, positions=noised.positions)  # (N, V)
    out = objective.loss(logits, noised, obj_cfg)
    if out.loss.grad_fn is None or logits.shape[0] == 0:
        out.loss = out.loss + 0.0 * logits.sum()  # graph-connected 0: every rank backpropagates
    return out
