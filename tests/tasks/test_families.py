"""Every registered family: determinism, disjoint splits, limits, verifiers, capacity."""

import re

import pytest

from tabom.tasks import FAMILIES, Problem, get_family
from tabom.tasks.base import MAX_NATIVE_CHARS, MAX_PROMPT_CHARS, MAX_REFERENCE_CHARS, is_allowed_text

ALL = list(FAMILIES)
NON_CODE = [name for name in ALL if name != "code_func"]  # code_func runs code: see test_code_func.py


def _bump(text: str) -> str:
    """A wrong answer: integers plus one; otherwise the first character changed."""
    if re.fullmatch(r"-?\d+", text):
        return str(int(text) + 1)
    ch = text[0]
    if ch.isalpha():
        new = chr((ord(ch.lower()) - 97 + 1) % 26 + 97)
        new = new.upper() if ch.isupper() else new
    elif ch.isdigit():
        new = str((int(ch) + 1) % 10)
    else:
        new = "x"
    return new + text[1:]


def wrong_output(p: Problem) -> str:
    """The native solution with its final answer altered."""
    if p.family == "ood_format":
        return _bump(p.native)
    head = p.native.rsplit("#### ", 1)[0]
    return head + "#### " + _bump(p.answer)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_problems_other_seed_other_problems(name: str) -> None:
    fam = get_family(name)
    a = fam.problems("train", 40, seed=3)
    assert a == get_family(name).problems("train", 40, seed=3)
    assert [p.prompt for p in a] != [p.prompt for p in fam.problems("train", 40, seed=4)]


@pytest.mark.parametrize("name", ALL)
def test_splits_never_share_a_problem(name: str) -> None:
    """150 per split: no shared prompt, id or canonical key (renamed copies count as shared)."""
    fam = get_family(name)
    by_split = {s: fam.problems(s, 150, seed=0) for s in ("train", "val", "test")}
    for field in ("prompt", "id"):
        sets = {s: {getattr(p, field) for p in ps} for s, ps in by_split.items()}
        assert all(len(v) == 150 for v in sets.values()), field
        assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    keys = {s: {p.meta["key"] for p in ps} for s, ps in by_split.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]


@pytest.mark.parametrize("name", ALL)
def test_lengths_charset_and_fields(name: str) -> None:
    fam = get_family(name)
    for p in fam.problems("train", 300, seed=1) + fam.problems("test", 100, seed=1):
        assert len(p.prompt) <= MAX_PROMPT_CHARS, p.prompt
        assert len(p.native) <= MAX_NATIVE_CHARS, p.native
        assert len(p.reference) <= MAX_REFERENCE_CHARS, p.reference
        for text in (p.prompt, p.native, p.reference, p.answer):
            assert is_allowed_text(text), repr(text)
        assert p.family == name and p.domain == FAMILIES[name]
        assert p.reference != p.native
        assert len(p.id) == 16


@pytest.mark.parametrize("name", NON_CODE)
def test_verifier_accepts_native_and_reference_and_rejects_wrong(name: str) -> None:
    fam = get_family(name)
    problems = fam.problems("val", 150, seed=2)
    for p in problems:
        assert fam.verify(p, p.native), (p.prompt, p.native)
        assert fam.verify(p, p.reference), (p.prompt, p.reference)
        assert not fam.verify(p, wrong_output(p)), (p.prompt, wrong_output(p))
        assert not fam.verify(p, "")


@pytest.mark.parametrize("name", ALL)
def test_enough_distinct_problems_for_pretraining_reproduction_and_eval(name: str) -> None:
    """The default families are small on purpose (math_linear has about 2,000 problems in all);
    they must still give the reproduction's 500 training prompts with room to spare and
    `tabom eval`'s default 200 val and test problems (pre-training cycles a short family)."""
    fam = get_family(name)
    assert len(fam.problems("train", 1500, seed=0)) == 1500
    assert len(fam.problems("val", 200, seed=0)) == 200
    assert len(fam.problems("test", 200, seed=0)) == 200


def test_difficulty_knobs_change_the_problems() -> None:
    """max_ops=1 gives one working line; a (2, 2) loop range gives two loop lines."""
    chain = get_family("math_chain", min_ops=1, max_ops=1).problems("train", 50, seed=0)
    assert all(p.native.count("\n") == 1 for p in chain)
    trace = get_family("code_trace", kinds=("loop",), loop_range=(2, 2)).problems("train", 50, seed=0)
    assert all(p.native.count("\n") == 3 for p in trace)  # init, 2 iterations, "####"
    linear = get_family("math_linear", x_range=(-5, -1), forms=("ax+b",)).problems("train", 50, seed=0)
    assert all(-5 <= int(p.answer) <= -1 for p in linear)


def test_bad_knobs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="start_range"):
        get_family("math_chain", start_range=(5, 1))
    with pytest.raises(ValueError, match="forms"):
        get_family("math_linear", forms=("x^2",))
    with pytest.raises(ValueError, match="kinds"):
        get_family("code_trace", kinds=())


def test_hand_checked_examples() -> None:
    """Answers of known instances: 3*x+4=19 gives x=5; 'banana' has 3 a's."""
    lin = get_family("math_linear")
    p = Problem(id="t", family="math_linear", domain="math", prompt="Solve for x: 3*x+4=19",
                reference="", native="", answer="5", meta={})
    assert lin.verify(p, "3*x=19-4=15\nx=15/3=5\n#### 5")
    assert lin.verify(p, "Subtract 4: 3x = 15. Divide by 3: x = 5. The answer is 5.")
    assert not lin.verify(p, "#### 6")
    s = get_family("ood_string")
    q = Problem(id="t", family="ood_string", domain="ood", prompt="How many times does a appear in banana?",
                reference="", native="", answer="3", meta={"op": "count"})
    assert s.verify(q, "a a a\n#### 3") and not s.verify(q, "#### 2")
