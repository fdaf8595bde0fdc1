"""The batch the model sees: left-padded prompts followed by the masked response.

Row ``b`` of a batch of width ``L = max prompt length + G`` is::

    [pad ... pad | prompt_b | mask x G]      attention: [False ... False | True ... True]

so the response always occupies the last ``G`` columns of every row. The model is expected to
exclude padding from attention and to count positions from the first attended token.

:func:`response_logits` runs the model and returns logits only for the requested response
positions, packed ``(N, V)`` in row-major order. When the model's ``forward`` accepts a
``positions`` argument (``tabom.models.DiffusionLM`` does), the language-model head runs only
there; otherwise the full ``(B, L, V)`` output is sliced.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


def model_device(model: Any) -> torch.device:
    """The device of ``model`` (its ``device`` attribute, else its first parameter, else CPU)."""
    device = getattr(model, "device", None)
    if isinstance(device, (torch.device, str)):
        return torch.device(device)
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        first = next(iter(parameters()), None)
        if first is not None:
            return first.device
    return torch.device("cpu")


def accepts_positions(model: Any) -> bool:
    """Whether ``model(input_ids, attention_mask, positions=...)`` is supported."""
    target = getattr(model, "forward", model)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return "positions" in parameters


def left_pad(
    prompts: list[list[int]],
    gen_length: int,
    *,
    pad_token_id: int,
    mask_token_id: int,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad ``prompts`` and append ``gen_length`` mask tokens to each.

    Args:
        prompts: B lists of token ids (an empty prompt is allowed).

    Returns:
        ``input_ids (B, L)`` long and ``attention_mask (B, L)`` bool, ``L = max len + G``.
    """
    width = max(len(p) for p in prompts) + gen_length
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)  # (B, L)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.bool)  # (B, L)
    for row, prompt in enumerate(prompts):
        start = width - gen_length - len(prompt)
        input_ids[row, start : width - gen_length] = torch.tensor(prompt, dtype=torch.long)
        attention_mask[row, start:] = True
    input_ids[:, width - gen_length :] = mask_token_id
    return input_ids.to(device), attention_mask.to(device)


def trim_left_padding(
    input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop leading columns that no row attends to (after rows have left the batch).

    ``(B, L), (B, L) -> (B, L'), (B, L')`` with ``L' <= L``; nothing attended is ever dropped.
    """
    attended_cols = attention_mask.any(dim=0)  # (L,)
    if attended_cols.all() or not attended_cols.any():
        return input_ids, attention_mask
    first = int(attended_cols.long().argmax())
    return input_ids[:, first:], attention_mask[:, first:]


def response_logits(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    wanted: torch.Tensor,
    *,
    use_positions: bool,
) -> torch.Tensor:
    """Logits of the wanted response positions, packed row-major.

    Args:
        model: ``model(input_ids, attention_mask) -> (B, L, V)`` aligned logits, optionally also
            ``model(..., positions=(B, L) bool) -> (N, V)``.
        input_ids: ``(B, L)`` long; the response is the last ``G`` columns.
        attention_mask: ``(B, L)`` bool.
        wanted: ``(B, G)`` bool, response positions whose logits are needed.
        use_positions: call the model with ``positions=`` (see :func:`accepts_positions`).

    Returns:
        ``(N, V)`` logits, ``N = wanted.sum()``, in the order of ``wanted.nonzero()``.
    """
    gen_length = wanted.shape[1]
    if use_positions:
        positions = torch.zeros_like(attention_mask)  # (B, L)
        positions[:, -gen_length:] = wanted
        return model(input_ids, attention_mask, positions=positions)  # (N, V)
    logits = model(input_ids, attention_mask)  # (B, L, V)
    return logits[:, -gen_length:][wanted]  # (N, V)
