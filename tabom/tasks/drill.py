"""Arithmetic drill: bare "13-6=" -> "7" pairs added to the tiny model's pre-training mixture.

Why: in the families' chain-of-thought answers every intermediate result also appears as the next
line's operand (and the last one in the "#### " line), so under masked-diffusion training a
masked result can almost always be *copied* from a visible twin; the signal that forces the model
to *compute* (all copies masked, the operands visible) is rare. A 5M-parameter model trained that
way fills masked answers well (88% of content tokens at t=0.1) yet gets "13-6=" right about one
time in ten, on training problems too (docs/tiny_model.md). A drill pair has nothing to copy.

The drill covers the operations the families use: + and - (first operand -20..200, second
0..99), * by 2..9, exact / by 2..9, // and % by 1..9, and the comparisons code_trace prints
("18>9" -> "True"). It is pre-training data only: not a task family, never evaluated. A real LM
learns arithmetic from its corpus in the same way.
"""

from __future__ import annotations

import random

OPS = ("+", "-", "*", "/", "//", "%", "cmp")
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")


def _one(rng: random.Random) -> tuple[str, str]:
    op = rng.choice(OPS)
    if op in ("+", "-"):
        a, b = rng.randint(-20, 200), rng.randint(0, 99)
        return f"{a}{op}{b}=", str(a + b if op == "+" else a - b)
    if op == "*":
        a, b = rng.randint(0, 99), rng.randint(2, 9)
        return f"{a}*{b}=", str(a * b)
    if op == "/":
        b = rng.randint(2, 9)
        q = rng.randint(0, 200 // b)
        return f"{q * b}/{b}=", str(q)
    if op in ("//", "%"):
        a, b = rng.randint(0, 99), rng.randint(1, 9)
        return f"{a}{op}{b}=", str(a // b if op == "//" else a % b)
    a, b, cmp = rng.randint(0, 20), rng.randint(0, 20), rng.choice(COMPARISONS)
    truth = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[cmp]
    return f"{a}{cmp}{b}", str(truth)


def arithmetic_drill(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (prompt, answer) pairs, e.g. ("13-6=", "7"), ("18>9", "True"); same seed, same pairs.

    Pairs may repeat (the space of small facts is finite; repetition is what a drill is).
    """
    if n < 0:
        raise ValueError(f"drill: n must be >= 0, got {n}")
    rng = random.Random(f"drill-{seed}")
    return [_one(rng) for _ in range(n)]
