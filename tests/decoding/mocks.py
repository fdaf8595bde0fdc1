"""Mock models for the decoding tests: fixed or handcrafted logits, no weights.

Each mock has ``mask_token_id``, ``pad_token_id``, ``eos_token_id`` and is called as
``model(input_ids (B, L), attention_mask (B, L) bool) -> logits (B, L, V)``; every call's input
shape is recorded in ``calls``.
"""

from __future__ import annotations

import torch


class FixedLogitsModel:
    """Returns the same response logits at every call: ``response (G, V)`` for every row.

    Prompt positions get zeros. The response is the last G columns of the input.
    """

    def __init__(self, response: torch.Tensor, mask_token_id: int, pad_token_id: int = 0) -> None:
        self.response = response.float()  # (G, V)
        self.mask_token_id = mask_token_id
        self.pad_token_id = pad_token_id
        self.eos_token_id = pad_token_id
        self.calls: list[tuple[int, int]] = []

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(input_ids.shape))
        batch, width = input_ids.shape
        gen, vocab = self.response.shape
        logits = torch.zeros(batch, width, vocab)  # (B, L, V)
        logits[:, width - gen :] = self.response
        return logits


class ContentModel:
    """Logits that depend on everything the row attends to, and on nothing else.

    ``logits[b, p, v] = 3 cos(0.37 (v + 1)(r + 1) + 0.11 S_b)`` with ``r`` the position counted
    from the row's first attended token and ``S_b`` the sum of the attended token ids (prompt and
    current response, mask tokens included). Padding therefore changes nothing *only if* it is
    excluded from attention (``pad_token_id = 10`` would add to S and shift r otherwise). The mask
    and pad ids get a very low logit so they are never predicted.
    """

    vocab_size = 12

    def __init__(self) -> None:
        self.mask_token_id = 11
        self.pad_token_id = 10
        self.eos_token_id = 1
        self.calls: list[tuple[int, int]] = []
        self.masks_seen: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(input_ids.shape))
        self.masks_seen.append(attention_mask.clone())
        attn = attention_mask.long()  # (B, L)
        rel = (attn.cumsum(dim=1) - 1).clamp(min=0).float()  # (B, L)
        total = (input_ids * attn).sum(dim=1).float()  # (B,)
        vocab = torch.arange(self.vocab_size, dtype=torch.float32)  # (V,)
        phase = 0.37 * (vocab + 1) * (rel.unsqueeze(-1) + 1) + 0.11 * total[:, None, None]
        logits = 3 * torch.cos(phase)  # (B, L, V)
        logits[..., self.mask_token_id] = -1e4
        logits[..., self.pad_token_id] = -1e4
        return logits


class PositionsContentModel(ContentModel):
    """``ContentModel`` that also honours ``positions=(B, L) bool -> (N, V)`` packed logits."""

    def __init__(self) -> None:
        super().__init__()
        self.position_calls = 0

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits = ContentModel.__call__(self, input_ids, attention_mask)  # (B, L, V)
        if positions is None:
            return logits
        self.position_calls += 1
        return logits[positions]  # (N, V)

    def __call__(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.forward(input_ids, attention_mask, positions)


class TextModel(ContentModel):
    """``ContentModel`` with the two text methods ``generate_text`` uses (one char per token)."""

    alphabet = "abcdefghij"

    def encode_prompt(self, text: str) -> list[int]:
        return [self.alphabet.index(ch) for ch in text]

    def decode(self, ids: list[int]) -> str:
        if self.eos_token_id in ids:
            ids = ids[: ids.index(self.eos_token_id)]
        return "".join(self.alphabet[i] for i in ids if i < len(self.alphabet))
