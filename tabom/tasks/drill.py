"""Arithmetic drill: the facts inside the training answers, as bare pairs ("13-6=" -> "7").

Why: in the families' chain-of-thought answers every intermediate result also appears as the next
line's operand (and the last one in the "#### " line), so under masked-diffusion training a
masked result can almost always be *copied* from a visible twin; the signal that forces the model
to *compute* (all copies masked, the operands visible) is rare. A 5M-parameter model trained that
way fills masked answers well (88% of content tokens at t=0.1) yet gets "13-6=" right about one
time in ten, on training problems too (docs/tiny_model.md). A drill pair has nothing to copy.

The facts are taken from the *training* answers given (every "a OP b=c" with OP in + - * / // %,
and every "a CMP b True|False" that code_trace prints), each checked by recomputing it, then
sampled with replacement: the drill teaches exactly the arithmetic the training data already
contains, no more, in a form without twins. It is pre-training data only: not a task family,
never evaluated.
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Sequence

_NUM = r"-?\d+"
BINARY = re.compile(rf"(?<![\d)])({_NUM})(//|[+\-*/%])({_NUM})=({_NUM})(?!\d)")
COMPARE = re.compile(rf"(?<![\d)])({_NUM})(<=|>=|==|!=|<|>)({_NUM}) (True|False)")
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv,
          "%": operator.mod}
_CMP = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}


def _true(a: int, op: str, b: int, c: int) -> bool:
    if op == "/":
        return b != 0 and a == b * c
    if op in ("//", "%") and b == 0:
        return False
    return _ARITH[op](a, b) == c


def answer_facts(answers: Sequence[str]) -> list[tuple[str, str]]:
    """Every checked arithmetic fact in `answers`, in order: ("13-6=", "7"), ("18>9", "True")."""
    facts: list[tuple[str, str]] = []
    for text in answers:
        for match in BINARY.finditer(text):
            a, op, b, c = match.groups()
            if _true(int(a), op, int(b), int(c)):
                facts.append((f"{a}{op}{b}=", c))
        for match in COMPARE.finditer(text):
            a, op, b, truth = match.groups()
            if str(_CMP[op](int(a), int(b))) == truth:
                facts.append((f"{a}{op}{b}", truth))
    return facts


SHEET_PROMPT = "Work out:"
"""The prompt of every drill sheet (`arithmetic_drill(..., lines=k)` with k > 1)."""


def arithmetic_drill(
    answers: Sequence[str], n: int, seed: int, lines: int = 1, max_chars: int | None = None
) -> list[tuple[str, str]]:
    """`n` (prompt, answer) pairs drawn with replacement from `answer_facts(answers)`; seeded.

    With `lines=1` each pair is one bare fact ("13-6=", "7"). With `lines=k > 1` each pair is a
    *sheet*: the prompt `SHEET_PROMPT` and an answer of k facts written out whole, one per line
    ("13-6=7\n4*3=12\n..."), so the facts sit in the answer window where the families' working
    lines sit, each result without a twin to copy. A sheet draws k facts; `lines=1` draws exactly
    what earlier versions drew for the same seed. `max_chars` caps a sheet's length: the lines
    that would overflow it are left out (each sheet keeps at least its first fact).
    """
    if n < 0:
        raise ValueError(f"drill: n must be >= 0, got {n}")
    if lines < 1:
        raise ValueError(f"drill: lines must be >= 1, got {lines}")
    if n == 0:
        return []
    facts = answer_facts(answers)
    if not facts:
        raise ValueError("drill: the answers hold no arithmetic facts to drill")
    rng = random.Random(f"drill-{seed}")
    if lines == 1:
        return [facts[rng.randrange(len(facts))] for _ in range(n)]
    sheets = []
    for _ in range(n):
        drawn = [facts[rng.randrange(len(facts))] for _ in range(lines)]
        text = _written(*drawn[0])
        for q, a in drawn[1:]:
            line = _written(q, a)
            if max_chars is None or len(text) + 1 + len(line) <= max_chars:
                text += "\n" + line
        sheets.append((SHEET_PROMPT, text))
    return sheets


def _written(question: str, answer: str) -> str:
    """One fact as a working line: "13-6=" + "7" -> "13-6=7"; "18>9" + "True" -> "18>9 True"."""
    return question + answer if question.endswith("=") else f"{question} {answer}"
