"""Selection rules on fixed logits: which positions each strategy chooses, and with which token."""

from __future__ import annotations

import math

import pytest
import torch

from tabom.decoding.rules import propose, select, select_positions

# Four response positions, V = 3.
#   pos 0: [2, 0, 0]  -> argmax 0, p = e^2 / (e^2 + 2) = 7.389 / 9.389 = .787
#   pos 1: [0, 0, 0]  -> argmax 0, p = 1/3, entropy ln 3 (the largest)
#   pos 2: [0, 5, 0]  -> argmax 1, p = e^5 / (e^5 + 2) = 148.41 / 150.41 = .987
#   pos 3: [1, 1, 0]  -> argmax 0 (first of a tie), p = e / (2e + 1) = .422
LOGITS = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [1.0, 1.0, 0.0]]])
ALL = torch.ones(1, 4, dtype=torch.bool)


def test_select_positions_ties_go_to_lowest_position() -> None:
    """Scores [1, 3, 3, 3], count 2: the tie at 3 is broken toward positions 1 and 2."""
    chosen = select_positions(torch.tensor([[1.0, 3.0, 3.0, 3.0]]), ALL, torch.tensor([2]))
    assert chosen.tolist() == [[False, True, True, False]]


def test_select_positions_never_picks_ineligible() -> None:
    """Position 0 scores highest but is not eligible; a count of 9 takes every eligible one."""
    eligible = torch.tensor([[False, True, True, False]])
    score = torch.tensor([[9.0, 1.0, 2.0, 8.0]])
    one = select_positions(score, eligible, torch.tensor([1]))
    assert one.tolist() == [[False, False, True, False]]
    many = select_positions(score, eligible, torch.tensor([9]))
    assert many.tolist() == [[False, True, True, False]]


def test_select_positions_per_row_counts() -> None:
    """Two rows with counts 0 and 3 over scores [4, 3, 2, 1]."""
    score = torch.tensor([[4.0, 3.0, 2.0, 1.0]]).expand(2, 4)
    chosen = select_positions(score, ALL.expand(2, 4), torch.tensor([0, 3]))
    assert chosen.sum(dim=1).tolist() == [0, 3] and chosen[1].tolist() == [True, True, True, False]


def test_confidence_rule_picks_most_probable_argmax() -> None:
    """Confidences .787, .333, .987, .422 -> count 2 picks positions 2 (token 1) and 0 (token 0)."""
    sel = select("confidence", LOGITS, ALL, torch.tensor([2]))
    assert sel.chosen.tolist() == [[True, False, True, False]]
    assert sel.tokens.tolist() == [[0, 0, 1, 0]]
    e = math.e
    expected = torch.tensor([e**2 / (e**2 + 2), 1 / 3, e**5 / (e**5 + 2), e / (2 * e + 1)])
    assert torch.allclose(sel.score[0], expected, atol=1e-6)


def test_confidence_rule_respects_still_masked() -> None:
    """With position 2 already decoded, count 1 picks position 0 (.787 beats .422 and .333)."""
    masked = torch.tensor([[True, True, False, True]])
    sel = select("confidence", LOGITS, masked, torch.tensor([1]))
    assert sel.chosen.tolist() == [[True, False, False, False]]
    assert sel.score[0, 2].item() == float("-inf") and sel.tokens[0, 2].item() == -1


def test_confidence_rule_rejects_top_p() -> None:
    with pytest.raises(ValueError, match="^top_p/top_k:"):
        select("confidence", LOGITS, ALL, torch.tensor([1]), top_p=0.9)


def test_entropy_rule_picks_lowest_entropy() -> None:
    """Entropies: pos 2 (p .987) is lowest, pos 1 (uniform, ln 3 = 1.0986) highest.
    pos 0: p = [.787, .107, .107] -> H = .189 + 2 * .239 = .667;
    pos 3: p = [.422, .422, .155] -> H = 1.018.
    Order of choice: 2, 0, 3, 1."""
    sel = select("entropy", LOGITS, ALL, torch.tensor([3]))
    assert sel.chosen.tolist() == [[True, False, True, True]]
    assert sel.score[0].argsort(descending=True).tolist() == [2, 0, 3, 1]
    assert sel.score[0, 1].item() == pytest.approx(-math.log(3), abs=1e-6)


def test_entropy_rule_top_k_changes_the_confidence() -> None:
    """top_k = 1 keeps the top logit and any tied with it (Dream drops only logits < the k-th):
    positions 0 and 2 become one-hot (-H = 0), position 1 keeps its 3-way tie (-ln 3) and
    position 3 its 2-way tie (-ln 2). Positions 0 and 2 tie at 0 and the tie goes to position 0,
    whereas untruncated the choice is position 2."""
    sel = select("entropy", LOGITS, ALL, torch.tensor([1]), top_k=1)
    assert sel.chosen.tolist() == [[True, False, False, False]]
    expected = torch.tensor([[0.0, -math.log(3), 0.0, -math.log(2)]])
    assert torch.allclose(sel.score, expected, atol=1e-6)


def test_margin_rule_by_hand() -> None:
    """Probabilities [.3, .5, .2] (margin .2), [.7, .2, .1] (.5), [.4, .35, .25] (.05):
    count 1 -> position 1; count 2 -> positions 1 and 0."""
    probs = torch.tensor([[[0.3, 0.5, 0.2], [0.7, 0.2, 0.1], [0.4, 0.35, 0.25]]])
    masked = torch.ones(1, 3, dtype=torch.bool)
    one = select("margin", probs.log(), masked, torch.tensor([1]))
    assert one.chosen.tolist() == [[False, True, False]]
    sel = select("margin", probs.log(), masked, torch.tensor([2]))
    assert sel.chosen.tolist() == [[True, True, False]]
    assert torch.allclose(sel.score, torch.tensor([[0.2, 0.5, 0.05]]), atol=1e-6)
    assert sel.tokens.tolist() == [[1, 0, 0]]


def test_random_rule_is_seeded_and_eligible_only() -> None:
    """Random order: same seed, same picks; only masked positions; exactly `count` of them."""
    logits = torch.zeros(2, 10, 5)
    masked = torch.rand(2, 10, generator=torch.Generator().manual_seed(0)) < 0.6
    counts = torch.tensor([3, 2])
    first = select("random", logits, masked, counts, torch.Generator().manual_seed(7))
    again = select("random", logits, masked, counts, torch.Generator().manual_seed(7))
    other = select("random", logits, masked, counts, torch.Generator().manual_seed(8))
    assert torch.equal(first.chosen, again.chosen)
    assert not torch.equal(first.chosen, other.chosen)
    assert not (first.chosen & ~masked).any()
    assert first.chosen.sum(dim=1).tolist() == [3, 2]


def test_confidence_gumbel_sampling_reproducible() -> None:
    """At temperature 1, LLaDA's Gumbel-max tokens repeat for a seed and vary across seeds."""
    logits = torch.zeros(64, 20)
    def run(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return propose("confidence", logits, temperature=1.0, generator=generator)

    (a, _), (b, _), (c, score) = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.allclose(score, torch.full((64,), 1 / 20))  # raw softmax prob of any token


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="^strategy:"):
        select("greedy", LOGITS, ALL, torch.tensor([1]))
