"""`DiffusionLM`: a transformers decoder run with bidirectional attention as a masked diffusion LM.

The masked-diffusion maths in tabom never asks which model family it talks to: everything it
needs is on this adapter — the mask, EOS and pad ids, whether logits are shifted (Dream) or not
(LLaDA, tiny), and a forward that returns logits aligned to the positions they predict.

    model = tabom.models.load("tiny")
    logits = model(input_ids, attention_mask)                 # (B, L, V)
    picked = model(input_ids, attention_mask, positions=sel)  # (N, V), only where sel (B, L) is True

`positions=` runs the LM head only at the requested positions, so training and diagnostics never
build the full (B, L, V) tensor — at a 150K-token vocabulary that tensor dominates memory.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn


class TokenizerLike(Protocol):
    """What tabom needs from a tokenizer (the tiny character tokenizer or a transformers one)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]:
        """Text -> token ids (with the tokenizer's special tokens when asked)."""

    def decode(self, ids: list[int], skip_special_tokens: bool = ...) -> str:
        """Token ids -> text (special tokens dropped when asked)."""


def make_bidirectional(backbone: nn.Module) -> None:
    """Turn a transformers causal decoder into a bidirectional one, in place.

    transformers builds a bidirectional mask when `config.is_causal` is False, but its SDPA path
    falls back to each attention module's own `is_causal` flag when no mask is needed (no
    padding), so both are cleared.
    """
    backbone.config.is_causal = False
    for module in backbone.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False


class DiffusionLM(nn.Module):
    """A bidirectional transformer backbone plus what masked diffusion needs to know about it.

    Args:
        backbone: a transformers `*ForCausalLM` (Llama or Qwen2 classes); made bidirectional here.
        tokenizer: encodes prompts and decodes responses.
        mask_token_id, eos_token_id, pad_token_id: special ids of the model.
        logits_shift: True for Dream-style models, whose logit for position p comes from the
            hidden state at p - 1; False for LLaDA-style and the tiny model.
        family: "tiny" | "dream" | "llada" | "generic".
        name: where the model came from (a name or a path), recorded in outputs.
        chat_template: apply the tokenizer's chat template in `encode_prompt`.
    """

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer: TokenizerLike,
        *,
        mask_token_id: int,
        eos_token_id: int,
        pad_token_id: int,
        logits_shift: bool,
        family: str = "generic",
        name: str = "",
        chat_template: bool = False,
    ) -> None:
        super().__init__()
        make_bidirectional(backbone)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.mask_token_id = int(mask_token_id)
        self.eos_token_id = int(eos_token_id)
        self.pad_token_id = int(pad_token_id)
        self.logits_shift = bool(logits_shift)
        self.family = family
        self.name = name
        self.chat_template = chat_template

    # ----------------------------------------------------------------- properties
    @property
    def default_strategy(self) -> str:
        """The decoding strategy the paper uses for this family (confidence for LLaDA)."""
        return "confidence" if self.family == "llada" else "entropy"

    @property
    def default_gen_length(self) -> int:
        """Response tokens decoded by default: 64 for the tiny model, 256 (the paper's) otherwise."""
        return 64 if self.family == "tiny" else 256

    @property
    def vocab_size(self) -> int:
        """V, the number of rows of the LM head (V, H)."""
        return int(self.head_weight.shape[0])

    @property
    def device(self) -> torch.device:
        """The device of the LM head's weight."""
        return self.head_weight.device

    @property
    def config(self) -> Any:
        """The backbone's transformers config."""
        return self.backbone.config

    @property
    def head_weight(self) -> torch.Tensor:
        """The LM head matrix (V, H)."""
        return self.backbone.get_output_embeddings().weight

    # ------------------------------------------------------------------- forward
    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states (B, L, H), aligned so that `hidden[:, p]` predicts token p.

        For shifted (Dream-style) models the state at p - 1 is moved to p; position 0 keeps its
        own state (it is always a prompt position, never predicted).
        """
        mask = None if attention_mask is None else attention_mask.to(torch.long)
        body = self.backbone.get_decoder()
        h = body(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, L, H)
        if self.logits_shift:
            h = torch.cat([h[:, :1], h[:, :-1]], dim=1)
        return h

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Apply the LM head: (..., H) -> (..., V)."""
        return self.backbone.get_output_embeddings()(hidden)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits aligned to the positions they predict.

        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L) bool or 0/1; False marks padding. None: attend everywhere.
            positions: None -> logits (B, L, V); a bool mask (B, L) -> packed logits (N, V) at the
                True entries in row-major order; a long tensor (B, K) of indices -> (B, K, V).
        """
        h = self.hidden(input_ids, attention_mask)  # (B, L, H)
        if positions is None:
            return self.head(h)
        if positions.dtype == torch.bool:
            if positions.shape != input_ids.shape:
                raise ValueError(f"positions mask {tuple(positions.shape)} != input_ids {tuple(input_ids.shape)}")
            return self.head(h[positions])  # (N, V)
        idx = positions.to(torch.long)  # (B, K)
        picked = torch.gather(h, 1, idx.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # (B, K, H)
        return self.head(picked)

    # ---------------------------------------------------------------------- text
    def encode_prompt(self, text: str) -> list[int]:
        """Token ids the model sees for a user prompt (chat template applied when it has one)."""
        tok = self.tokenizer
        if self.chat_template and getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
            )
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        return list(tok.encode(text, add_special_tokens=True))

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """Response text: cut at the first EOS, mask and pad tokens dropped."""
        seq = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.eos_token_id in seq:
            seq = seq[: seq.index(self.eos_token_id)]
        seq = [t for t in seq if t not in (self.mask_token_id, self.pad_token_id)]
        return self.tokenizer.decode(seq, skip_special_tokens=True)

    def extra_repr(self) -> str:
        """Family, name, special ids and logit shift, shown in the module's repr."""
        return (
            f"family={self.family}, name={self.name!r}, mask={self.mask_token_id}, "
            f"eos={self.eos_token_id}, pad={self.pad_token_id}, shift={self.logits_shift}"
        )
