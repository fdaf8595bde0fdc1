"""Tests for packing helpers, sampling helpers and batch validation."""

from __future__ import annotations

import pytest
import torch

from objective_batches import make_batch
from tabom.objectives.types import (
    ObjectiveBatch,
    check_batch,
    check_packed,
    masked_row_mean,
    packed_index,
    uniform_int,
    unpack,
)


def test_packed_index_is_row_major_order_of_true_entries():
    pos = torch.tensor([[False, True, True], [True, False, True]])
    idx = packed_index(pos, 4)
    assert idx.tolist() == [1, 2, 3, 5]
    vals = torch.tensor([10.0, 20.0, 30.0, 40.0])
    assert unpack(vals, idx, pos.shape).tolist() == [[0, 10, 20], [30, 0, 40]]


def test_uniform_int_covers_the_inclusive_range():
    low = torch.tensor([0, 3, 5])
    high = torch.tensor([2, 3, 9])
    g = torch.Generator().manual_seed(0)
    seen = [set() for _ in range(3)]
    for _ in range(200):
        x = uniform_int(low, high, g)
        for b in range(3):
            seen[b].add(int(x[b]))
    assert seen == [{0, 1, 2}, {3}, {5, 6, 7, 8, 9}]


def test_masked_row_mean_by_hand():
    """Row 0: mean(1, 3) = 2; row 1: no entry (excluded); row 2: 6 -> loss (2 + 6) / 2 = 4."""
    v = torch.tensor([[1.0, 3.0], [5.0, 5.0], [6.0, 0.0]])
    m = torch.tensor([[True, True], [False, False], [True, False]])
    loss, used = masked_row_mean(v, m)
    assert loss.item() == 4.0 and used.tolist() == [True, False, True]


def test_check_batch_names_the_field():
    b = make_batch([[1]], [[0, 1]])
    bad = ObjectiveBatch(b.input_ids, b.attention_mask, b.response_mask, b.steps.int(), b.mask_token_id)
    with pytest.raises(ValueError, match="steps"):
        check_batch(bad)
    bad = ObjectiveBatch(b.input_ids, b.attention_mask.long(), b.response_mask, b.steps, b.mask_token_id)
    with pytest.raises(ValueError, match="attention_mask"):
        check_batch(bad)


def test_check_packed_rejects_wrong_row_count():
    with pytest.raises(ValueError, match="packed rows"):
        check_packed(torch.zeros(2, 5), torch.tensor([[True, True, True]]))
