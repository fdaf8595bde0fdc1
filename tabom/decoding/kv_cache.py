"""Block-wise approximate key/value caching for block decoding (Fast-dLLM's prefix and dual caches).

A masked diffusion LM attends bidirectionally, so every key and value changes whenever any token
is unmasked and exact decoding recomputes the whole sequence at every step. Fast-dLLM's
observation is that, within one semi-autoregressive block, the keys and values *outside* the
block change little; so:

* at the first step of a block (a **refresh**) the whole sequence runs once, as in exact decoding,
  and the keys/values of every layer are kept;
* at the block's later steps only a **window** of positions runs through the model, attending to
  the kept keys/values of the other positions:

  - ``prefix``: the window is the current block and everything after it (the suffix); the prompt
    and the finished blocks come from the cache;
  - ``dual``: the window is the current block alone; the prompt, the finished blocks *and* the
    suffix come from the cache (the suffix's keys/values are those of the refresh).

For a model whose logits are shifted (Dream: token p is predicted from the hidden state at
p - 1), the window starts one position before the block, so the first block position's logit
comes from the previous position's freshly computed hidden state.

Only :class:`tabom.models.DiffusionLM`-like models qualify (:func:`supports_cache`): the window's
forward needs the backbone itself (``model.backbone.get_decoder()``, ``model.head``,
``model.logits_shift``), run with explicit position ids (the columns' own, so rotary embeddings
match the refresh) and a 4D additive attention mask: a window position attends to the window
and to the kept columns, never to padding. LoRA adapters (merged or not) need nothing special:
PEFT's layers sit inside the same attention modules.

    >>> cache = BlockCache(model, "dual")
    >>> logits = cache.refresh(ids, attn, wanted, block=0)           # (N, V), the block's first step
    >>> logits = cache.window(ids, attn, wanted, start=s, end=e)     # (N, V), a later step

``none`` (no cache) is the engine's default and stays exact.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

CACHE_MODES: tuple[str, ...] = ("none", "prefix", "dual")
"""``--cache`` values: none (exact), prefix (prompt + finished blocks), dual (+ the suffix)."""


def check_cache(mode: str, block_length: int | None) -> None:
    """Raise ``ValueError`` naming ``cache`` when ``mode`` is unknown or needs a block length.

    ``prefix`` without blocks caches the prompt only (the whole response is one block); ``dual``
    needs ``block_length``, since without blocks there is no suffix whose keys it could reuse.
    """
    if mode not in CACHE_MODES:
        raise ValueError(f"cache: unknown {mode!r}; choose one of {', '.join(CACHE_MODES)}")
    if mode == "dual" and block_length is None:
        raise ValueError("cache: dual needs a block length (--block-length); without blocks there is no suffix to cache")


def supports_cache(model: Any) -> bool:
    """Whether ``model`` exposes what the cached forward needs (a ``DiffusionLM`` does)."""
    backbone = getattr(model, "backbone", None)
    return (
        backbone is not None
        and callable(getattr(backbone, "get_decoder", None))
        and callable(getattr(model, "head", None))
        and hasattr(model, "logits_shift")
    )


def require_cache_support(model: Any, mode: str) -> None:
    """Raise ``ValueError`` naming ``cache`` when ``mode`` is not none and ``model`` cannot cache."""
    if mode != "none" and not supports_cache(model):
        name = getattr(model, "name", None) or type(model).__name__
        raise ValueError(
            f"cache: {mode} needs a transformers-backed DiffusionLM (backbone, head, logits_shift); "
            f"model {name!r} has none; use --cache none"
        )


class _Recorder:
    """A duck-typed transformers ``Cache``: records each layer's keys/values, or prepends them.

    transformers' attention modules call ``cache.update(key_states, value_states, layer_idx, ...)``
    and attend to what it returns. Recording, it keeps ``(B, H_kv, L, D)`` per layer and returns
    the input; replaying, it returns ``cat([kept, new], dim=-2)`` and keeps nothing new.
    """

    def __init__(self) -> None:
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.recording = True
        self.rows: torch.Tensor | None = None  # replaying for a subset of the batch rows (B,) bool

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values the layer attends to: ``(B, H_kv, T, D)`` each."""
        if self.recording:
            self.keys[layer_idx], self.values[layer_idx] = key_states, value_states
            return key_states, value_states
        kept_keys, kept_values = self.keys[layer_idx], self.values[layer_idx]
        if self.rows is not None:
            kept_keys, kept_values = kept_keys[self.rows], kept_values[self.rows]
        return torch.cat([kept_keys, key_states], dim=-2), torch.cat([kept_values, value_states], dim=-2)

    def select_rows(self, keep: torch.Tensor) -> None:
        """Keep the batch rows where ``keep (B,)`` is True."""
        for layer in self.keys:
            self.keys[layer] = self.keys[layer][keep]
            self.values[layer] = self.values[layer][keep]


def _additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(B, Q, K)`` bool -> ``(B, 1, Q, K)`` additive mask: 0 where allowed, the dtype's minimum
    elsewhere (works for SDPA and eager attention alike)."""
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


class BlockCache:
    """The kept keys/values of one batch and the two forwards that use them.

    Args:
        model: a :class:`tabom.models.DiffusionLM` (see :func:`supports_cache`).
        mode: ``"prefix"`` or ``"dual"``.

    Attributes:
        block: the block index of the last refresh (None before the first).
    """

    def __init__(self, model: Any, mode: str) -> None:
        if mode not in ("prefix", "dual"):
            raise ValueError(f"cache: BlockCache needs prefix or dual, got {mode!r}")
        require_cache_support(model, mode)
        self.model = model
        self.mode = mode
        self.block: int | None = None
        self._recorder = _Recorder()
        self._body = model.backbone.get_decoder()
        params = inspect.signature(self._body.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._dtype = model.head_weight.dtype if hasattr(model, "head_weight") else torch.float32

    def _run(
        self, ids: torch.Tensor, positions: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        """Backbone over ``ids (B, W)`` at ``positions (B, W)``; ``allowed (B, W, K)`` bool."""
        out = self._body(
            input_ids=ids,
            attention_mask=_additive_mask(allowed, self._dtype),
            position_ids=positions,
            use_cache=False,
            **{self._cache_arg: self._recorder},
        )
        return out.last_hidden_state  # (B, W, H)

    def _aligned(self, hidden: torch.Tensor) -> torch.Tensor:
        """Shift Dream-style hidden states so that ``aligned[:, c]`` predicts column c."""
        if self.model.logits_shift:
            return torch.cat([hidden[:, :1], hidden[:, :-1]], dim=1)
        return hidden

    def refresh(self, ids: torch.Tensor, attn: torch.Tensor, wanted: torch.Tensor, block: int) -> torch.Tensor:
        """Run the whole sequence, keep every layer's keys/values, return the wanted logits.

        Args:
            ids: ``(B, L)`` long; attn: ``(B, L)`` bool, False on padding.
            wanted: ``(B, L)`` bool, the columns whose logits are returned.
            block: the current block index (remembered in :attr:`block`).

        Returns:
            ``(N, V)`` logits at the True entries of ``wanted``, row-major.
        """
        batch, width = ids.shape
        self._recorder = _Recorder()
        positions = torch.arange(width, device=ids.device).expand(batch, width)  # (B, L)
        allowed = attn.unsqueeze(1).expand(batch, width, width)  # (B, L, L): keys not padding
        hidden = self._aligned(self._run(ids, positions, allowed))  # (B, L, H)
        self._recorder.recording = False
        self.block = block
        return self.model.head(hidden[wanted])

    def window(
        self,
        ids: torch.Tensor,
        attn: torch.Tensor,
        wanted: torch.Tensor,
        *,
        start: int,
        end: int,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Recompute the window of block columns ``[start, end)`` against the kept keys/values.

        The window is ``[start - shift, end)`` under ``dual`` and ``[start - shift, L)`` under
        ``prefix`` (``shift`` = 1 for Dream-style models, while a column precedes the block).

        Args:
            ids, attn: ``(B, L)``, as at the refresh (same columns).
            wanted: ``(B, L)`` bool, inside ``[start, end)`` for dual, ``[start, L)`` for prefix.
            rows: ``(B,)`` bool, run only these rows (the others want no logits: rows waiting for
                the batch to finish the block cost nothing); None runs all.

        Returns:
            ``(N, V)`` logits at the True entries of ``wanted``, row-major.
        """
        if rows is not None:
            if bool(wanted[~rows].any()):
                raise ValueError("cache: wanted logits in a row the window does not run")
            ids, attn, wanted = ids[rows], attn[rows], wanted[rows]
        batch, width = ids.shape
        lo = max(start - int(self.model.logits_shift), 0)
        hi = end if self.mode == "dual" else width
        if bool(wanted[:, :lo].any()) or bool(wanted[:, hi:].any()):
            raise ValueError(f"cache: wanted logits outside the recomputed window [{lo}, {hi})")
        columns = torch.arange(width, device=ids.device)  # (L,)
        outside = (columns < lo) | (columns >= hi)  # (L,) kept columns
        kept = attn & outside.unsqueeze(0)  # (B, L)
        allowed = torch.cat([kept, attn[:, lo:hi]], dim=1)  # (B, L + W)
        allowed = allowed.unsqueeze(1).expand(batch, hi - lo, width + hi - lo)  # (B, W, L + W)
        positions = columns[lo:hi].expand(batch, hi - lo)  # (B, W)
        self._recorder.rows = rows
        try:
            hidden = self._aligned(self._run(ids[:, lo:hi], positions, allowed))  # (B, W, H)
        finally:
            self._recorder.rows = None
        return self.model.head(hidden[wanted[:, lo:hi]])

    def select_rows(self, keep: torch.Tensor) -> None:
        """Drop the rows that left the batch (``keep (B,)`` bool)."""
        self._recorder.select_rows(keep)
