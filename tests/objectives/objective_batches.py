"""Tiny hand-built batches shared by the objective tests (imported as a plain module)."""

from __future__ import annotations

import torch
from torch import Tensor

from tabom.objectives.types import ObjectiveBatch

MASK = 99
PAD = 0


def make_batch(prompts: list[list[int]], steps: list[list[int]], left_pad: bool = True) -> ObjectiveBatch:
    """Rows of ``prompt + response``; the response token at decode step s is ``10 + index``.

    ``steps[b]`` gives the decode step of each response token (-1: never decoded). Rows are
    padded with PAD to a common length, on the left by default.
    """
    rows, attn, resp, stp = [], [], [], []
    for prompt, st in zip(prompts, steps):
        ids = prompt + [10 + i for i in range(len(st))]
        rows.append(ids)
        attn.append([True] * len(ids))
        resp.append([False] * len(prompt) + [True] * len(st))
        stp.append([-1] * len(prompt) + st)
    length = max(len(r) for r in rows)
    out = {"ids": [], "attn": [], "resp": [], "steps": []}
    for ids, a, r, s in zip(rows, attn, resp, stp):
        pad = length - len(ids)
        pieces = ((ids, PAD), (a, False), (r, False), (s, -1))
        padded = [([fill] * pad + x) if left_pad else (x + [fill] * pad) for x, fill in pieces]
        for key, val in zip(("ids", "attn", "resp", "steps"), padded):
            out[key].append(val)
    return ObjectiveBatch(
        input_ids=torch.tensor(out["ids"], dtype=torch.long),
        attention_mask=torch.tensor(out["attn"], dtype=torch.bool),
        response_mask=torch.tensor(out["resp"], dtype=torch.bool),
        steps=torch.tensor(out["steps"], dtype=torch.long),
        mask_token_id=MASK,
    )


def random_packed_logits(positions: Tensor, vocab: int = 128, seed: int = 0) -> Tensor:
    """Random (N, V) logits for the True entries of ``positions``, requiring grad."""
    g = torch.Generator().manual_seed(seed)
    n = int(positions.sum())
    return torch.randn(n, vocab, generator=g).requires_grad_(True)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
