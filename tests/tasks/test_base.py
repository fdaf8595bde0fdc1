"""The Problem record, split assignment, and the sampling loop of TaskFamily."""

import random

import pytest

from tabom.tasks.base import Draft, Problem, TaskFamily, is_allowed_text, problem_id, split_of


class _Tiny(TaskFamily):
    """A family with only 30 distinct problems: 'add k' for k in 0..29."""

    name = "tiny_test"
    domain = "math"

    def draft(self, rng: random.Random) -> Draft:
        k = rng.randint(0, 29)
        return Draft(key=str(k), prompt=f"1+{k}?", reference=f"It is {k + 1}.", native=f"#### {k + 1}",
                     answer=str(k + 1))

    def verify(self, problem: Problem, output: str) -> bool:
        return output.strip().endswith(problem.answer)


def test_split_of_is_stable_and_roughly_80_10_10() -> None:
    """Over 5,000 keys the shares are within 2 points of 80/10/10 (binomial sd ~0.6 points)."""
    counts = {"train": 0, "val": 0, "test": 0}
    for i in range(5000):
        counts[split_of("fam", f"k{i}")] += 1
    assert abs(counts["train"] / 5000 - 0.8) < 0.02
    assert abs(counts["val"] / 5000 - 0.1) < 0.02
    assert split_of("fam", "k1") == split_of("fam", "k1")


def test_problem_id_depends_on_family_and_prompt() -> None:
    assert problem_id("a", "x") == problem_id("a", "x")
    assert problem_id("a", "x") != problem_id("b", "x")
    assert len(problem_id("a", "x")) == 16


def test_problems_of_a_small_family_are_distinct_and_in_their_split() -> None:
    fam = _Tiny()
    train_keys = {str(k) for k in range(30) if split_of("tiny_test", str(k)) == "train"}
    got = fam.problems("train", len(train_keys), seed=0)
    assert {p.meta["key"] for p in got} == train_keys
    assert len({p.prompt for p in got}) == len(got)


def test_asking_for_more_than_exist_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="tiny_test: could only find"):
        _Tiny().problems("train", 31, seed=0)


def test_bad_split_and_n_are_rejected() -> None:
    with pytest.raises(ValueError, match="split"):
        _Tiny().problems("dev", 1)
    with pytest.raises(ValueError, match="n:"):
        _Tiny().problems("train", -1)


def test_problem_roundtrips_through_a_dict_and_is_hashable() -> None:
    p = _Tiny().problems("train", 1, seed=0)[0]
    assert Problem.from_dict(p.to_dict()) == p
    assert isinstance(hash(p), int)  # meta (a dict) is left out of the hash


def test_from_dict_names_the_place_and_field() -> None:
    with pytest.raises(ValueError, match=r"data.jsonl:3: prompt: missing field"):
        Problem.from_dict({"id": "x", "family": "f", "domain": "math"}, where="data.jsonl:3")
    bad = dict(id="x", family="f", domain="art", prompt="p", reference="r", native="n", answer="a")
    with pytest.raises(ValueError, match="domain"):
        Problem.from_dict(bad)


def test_is_allowed_text() -> None:
    assert is_allowed_text("a b~\n")
    assert not is_allowed_text("tab\there")
    assert not is_allowed_text("caf\u00e9")
