"""The arithmetic drill: every pair is a true fact, seeded, covering each operation."""

from __future__ import annotations

import pytest

from tabom.tasks.drill import arithmetic_drill


def _truth(prompt: str) -> str:
    expr = prompt.removesuffix("=")
    value = eval(expr, {"__builtins__": {}})  # noqa: S307 - our own generated arithmetic, not user input
    if isinstance(value, float):
        assert value.is_integer(), prompt
        value = int(value)
    return str(value)


def test_every_drill_pair_is_a_true_fact_and_every_operation_appears() -> None:
    pairs = arithmetic_drill(3000, seed=0)
    assert len(pairs) == 3000
    for prompt, answer in pairs:
        assert answer == _truth(prompt), (prompt, answer)
    seen = {op for prompt, _ in pairs for op in ("+", "-", "*", "//", "%", "<=", ">=", "==", "!=")
            if op in prompt}
    assert seen == {"+", "-", "*", "//", "%", "<=", ">=", "==", "!="}
    assert any("/" in p and "//" not in p for p, _ in pairs)
    assert {a for _, a in pairs} >= {"True", "False"}


def test_drill_is_seeded() -> None:
    assert arithmetic_drill(50, seed=1) == arithmetic_drill(50, seed=1)
    assert arithmetic_drill(50, seed=1) != arithmetic_drill(50, seed=2)
    assert arithmetic_drill(0, seed=0) == []
    with pytest.raises(ValueError, match="drill"):
        arithmetic_drill(-1, seed=0)
