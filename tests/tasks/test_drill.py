"""The arithmetic drill: the checked facts of the training answers, as bare pairs, seeded."""

from __future__ import annotations

import pytest

from tabom.tasks import mixture
from tabom.tasks.drill import answer_facts, arithmetic_drill


def test_answer_facts_reads_every_fact_form_and_drops_false_ones() -> None:
    text = "n+15=120/6=20\nn=20-15=5\n#### 5"
    assert answer_facts([text]) == [("120/6=", "20"), ("20-15=", "5")]
    assert answer_facts(["u=1\nv=1%2=1\nq=1//6=0\n0-3=-3\n2*n=-7+13=6"]) == [
        ("1%2=", "1"), ("1//6=", "0"), ("0-3=", "-3"), ("-7+13=", "6")]
    assert answer_facts(["a=10\n10<4 False\n18>9 True\n3<=3 False"]) == [("10<4", "False"), ("18>9", "True")]
    assert answer_facts(["2+2=5\n7/2=3\n5//0=0\ndef f(a): return a+1"]) == []


def test_every_fact_in_the_training_answers_is_true_and_covers_each_operation() -> None:
    # code_trace's // and % are off by default since 2026-11-30; the drill must still read them.
    natives = [p.native for p in mixture("train", 200, seed=0, options={"code_trace": {"use_floordiv": True}})]
    facts = answer_facts(natives)
    assert len(facts) > 300
    for prompt, answer in facts:
        if answer in ("True", "False"):
            continue
        expr = prompt.removesuffix("=")
        value = eval(expr, {"__builtins__": {}})  # noqa: S307 - facts our own generator wrote
        assert float(value) == int(answer), (prompt, answer)
    ops = {op for prompt, _ in facts for op in ("+", "-", "*", "//", "%") if op in prompt[1:]}
    assert ops == {"+", "-", "*", "//", "%"}
    assert any("/" in p and "//" not in p for p, _ in facts)
    assert {a for _, a in facts} >= {"True", "False"}


def test_drill_samples_those_facts_and_is_seeded() -> None:
    natives = [p.native for p in mixture("train", 50, seed=0)]
    facts = set(answer_facts(natives))
    drill = arithmetic_drill(natives, 300, seed=1)
    assert len(drill) == 300 and set(drill) <= facts and len(set(drill)) > 50
    assert drill == arithmetic_drill(natives, 300, seed=1)
    assert drill != arithmetic_drill(natives, 300, seed=2)
    assert arithmetic_drill(natives, 0, seed=0) == []
    with pytest.raises(ValueError, match="drill"):
        arithmetic_drill(natives, -1, seed=0)
    with pytest.raises(ValueError, match="no arithmetic facts"):
        arithmetic_drill(["PLANE|PLANE"], 3, seed=0)


def test_drill_sheets_write_whole_facts_one_per_line_within_the_cap() -> None:
    natives = [p.native for p in mixture("train", 100, seed=0)]
    true_facts = {q + a if q.endswith("=") else f"{q} {a}" for q, a in answer_facts(natives)}
    sheets = arithmetic_drill(natives, 50, seed=3, lines=6, max_chars=40)
    assert len(sheets) == 50 and all(prompt == "Work out:" for prompt, _ in sheets)
    counts = [len(text.split("\n")) for _, text in sheets]
    assert max(counts) <= 6 and min(counts) >= 1 and sum(counts) > 2 * len(sheets)
    for _, text in sheets:
        assert len(text) <= 40 or "\n" not in text
        assert set(text.split("\n")) <= true_facts
    assert sheets == arithmetic_drill(natives, 50, seed=3, lines=6, max_chars=40)
    # lines=1 draws exactly the bare pairs of earlier versions; a sheet's first line is that draw.
    bare = arithmetic_drill(natives, 1, seed=3)
    assert sheets[0][1].split("\n")[0] == bare[0][0] + bare[0][1] or bare[0][1] in ("True", "False")
    with pytest.raises(ValueError, match="lines"):
        arithmetic_drill(natives, 5, seed=3, lines=0)
