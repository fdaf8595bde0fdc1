"""The step's logits work in chunks of positions equals the whole-step computation."""

from __future__ import annotations

import pytest
import torch

from tabom.decoding.chunked import rows_per_chunk, step_work


@pytest.mark.parametrize("strategy,temperature,top_p", [("entropy", 0.0, None), ("entropy", 0.7, 0.9),
                                                        ("confidence", 0.0, None), ("confidence", 1.0, None),
                                                        ("margin", 0.5, None), ("random", 0.5, None)])
def test_chunks_equal_one_chunk(strategy: str, temperature: float, top_p: float | None) -> None:
    """11 wanted positions (7 eligible) of a 300-entry vocabulary, chunks of 3: same tokens, scores,
    entropies and confidences, and the generator left in the same state."""
    logits = torch.randn(11, 300, generator=torch.Generator().manual_seed(1)) * 3
    eligible = torch.tensor([1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1], dtype=torch.bool)
    runs = []
    for rows in (None, 3):
        gen = torch.Generator().manual_seed(5)
        work = step_work(lambda lo, hi: logits[lo:hi], 11, eligible, strategy=strategy, temperature=temperature,
                         top_p=top_p, top_k=None, generator=gen, need_entropy=True, need_confidence=True, rows=rows)
        runs.append((work, torch.rand(1, generator=gen)))
    (one, after_one), (chunked, after_chunked) = runs
    assert one.x0.shape == (7,) and one.entropy is not None and one.entropy.shape == (11,)
    assert torch.equal(one.x0, chunked.x0) and torch.equal(one.score, chunked.score)
    assert torch.equal(one.entropy, chunked.entropy) and torch.equal(one.confidence, chunked.confidence)
    assert torch.equal(after_one, after_chunked)


def test_no_wanted_positions_and_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = torch.zeros(0, 50)
    work = step_work(lambda lo, hi: empty[lo:hi], 0, torch.zeros(0, dtype=torch.bool), strategy="entropy",
                     temperature=0.0, top_p=None, top_k=None, generator=None, need_entropy=False,
                     need_confidence=False, rows=4)
    assert work.x0.shape == (0,) and work.entropy is None and work.confidence is None
    monkeypatch.setenv("TABOM_LOGITS_CHUNK", "0")
    assert rows_per_chunk(152064) is None
    monkeypatch.setenv("TABOM_LOGITS_CHUNK", "1000")
    assert rows_per_chunk(300) == 3 and rows_per_chunk(5000) == 1
    monkeypatch.delenv("TABOM_LOGITS_CHUNK")
    assert rows_per_chunk(152064) == (1 << 24) // 152064
