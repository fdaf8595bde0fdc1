"""Logit shaping and sampling: top-p, top-k, Gumbel-max, entropies, margins."""

from __future__ import annotations

import math

import pytest
import torch

from tabom.decoding.sampling import (
    check_sampling_args,
    draw_tokens,
    gumbel_argmax,
    neg_entropy,
    shaped_probs,
    shannon_entropy,
    top2_margin,
    top_k_filter,
    top_p_filter,
)

LOGITS = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))  # probabilities in scrambled order


def test_top_p_keeps_smallest_nucleus() -> None:
    """Sorted probs .5 (id 1), .3 (id 3), .15 (id 2), .05 (id 0); cumulative .5, .8, .95, 1.

    p = 0.7: a token goes when the mass before it exceeds .7 -> ids 2 and 0 go, 1 and 3 stay,
    renormalised to .5/.8 = .625 and .3/.8 = .375.
    """
    probs = torch.softmax(top_p_filter(LOGITS, 0.7), dim=-1)
    assert torch.allclose(probs, torch.tensor([[0.0, 0.625, 0.0, 0.375]]), atol=1e-6)


def test_top_p_always_keeps_the_first_token() -> None:
    """p = 0.1 < 0.5: only the most likely token (id 1) survives."""
    probs = torch.softmax(top_p_filter(LOGITS, 0.1), dim=-1)
    assert probs.argmax().item() == 1 and probs[0, 1].item() == pytest.approx(1.0)


def test_top_k_keeps_k_largest() -> None:
    """k = 2 keeps ids 1 (.5) and 3 (.3)."""
    kept = top_k_filter(LOGITS, 2) > torch.finfo(torch.float32).min
    assert kept.tolist() == [[False, True, False, True]]


def test_temperature_then_truncation_order() -> None:
    """T = 2 halves log-probs: weights sqrt(.05), sqrt(.5), sqrt(.15), sqrt(.3) = .2236, .7071,
    .3873, .5477 (sum 1.8657) -> .1199, .3790, .2076, .2936. top_k = 1 then keeps id 1 only."""
    tempered = shaped_probs(LOGITS, temperature=2.0, top_p=None, top_k=None)
    assert torch.allclose(tempered, torch.tensor([[0.1199, 0.3790, 0.2076, 0.2936]]), atol=1e-3)
    assert shaped_probs(LOGITS, 2.0, None, 1).tolist() == [[0.0, 1.0, 0.0, 0.0]]


def test_draw_tokens_argmax_at_zero_and_ties_low() -> None:
    """Temperature 0: argmax, first index among ties ([.4, .4, .2] -> 0)."""
    probs = torch.tensor([[0.4, 0.4, 0.2], [0.1, 0.2, 0.7]])
    assert draw_tokens(probs, 0.0, None).tolist() == [0, 2]


def test_draw_tokens_seeded_and_inside_support() -> None:
    """Sampling with a seeded generator repeats and never leaves the truncated support."""
    probs = shaped_probs(LOGITS.expand(200, 4), 1.0, None, 2)  # support {1, 3}
    first = draw_tokens(probs, 1.0, torch.Generator().manual_seed(3))
    again = draw_tokens(probs, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert set(first.tolist()) == {1, 3}


def test_gumbel_argmax_reproducible_and_greedy_at_zero() -> None:
    """Uniform logits over 50 tokens: the Gumbel winner depends on the seed only."""
    logits = torch.zeros(16, 50)
    a = gumbel_argmax(logits, 1.0, torch.Generator().manual_seed(0))
    b = gumbel_argmax(logits, 1.0, torch.Generator().manual_seed(0))
    c = gumbel_argmax(logits, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert gumbel_argmax(LOGITS, 0.0, None).tolist() == [1]


def test_gumbel_argmax_survives_huge_logits() -> None:
    """exp(1000) overflows float64; shifting by the row max keeps the argmax meaningful."""
    logits = torch.tensor([[1000.0, -1e9, -1e9]])
    assert gumbel_argmax(logits, 1.0, torch.Generator().manual_seed(0)).tolist() == [0]


def test_entropies_by_hand() -> None:
    """p = [.25, .75]: H = .25 ln 4 + .75 ln(4/3) = .34657 + .21576 = .56233.
    Uniform over 4: H = ln 4 = 1.38629. A one-hot row (other logits at -1e9) has H = 0."""
    logits = torch.tensor(
        [[0.0, math.log(3.0), -1e9, -1e9], [0.0, 0.0, 0.0, 0.0], [5.0, -1e9, -1e9, -1e9]]
    )
    assert torch.allclose(shannon_entropy(logits), torch.tensor([0.56233, 1.38629, 0.0]), atol=1e-5)
    probs = torch.softmax(logits, dim=-1)
    assert torch.allclose(neg_entropy(probs), torch.tensor([-0.56233, -1.38629, 0.0]), atol=1e-5)


def test_top2_margin_by_hand() -> None:
    """[.7, .2, .1] -> .5; [.4, .35, .25] -> .05."""
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    assert torch.allclose(top2_margin(probs), torch.tensor([0.5, 0.05]))


@pytest.mark.parametrize(
    ("temperature", "top_p", "top_k", "field"),
    [
        (-0.1, None, None, "temperature"),
        (0.0, 0.0, None, "top_p"),
        (0.0, 1.5, None, "top_p"),
        (0.0, None, 0, "top_k"),
    ],
)
def test_check_sampling_args(
    temperature: float, top_p: float | None, top_k: int | None, field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        check_sampling_args(temperature, top_p, top_k)
