"""``math_chain``: a short word problem with 2-3 arithmetic steps on small numbers.

    prompt     Ann has 7 pens. She gets 5 more. She gives away 3. She doubles
               them. How many pens now?
    native     7+5=12\\n12-3=9\\n9*2=18\\n#### 18
    reference  Start with 7. 7 plus 5 is 12. 12 minus 3 is 9. 9 times 2 is 18.
               The answer is 18.

Every intermediate value stays a whole number in ``0..max_value``. The
canonical text used for splits is the arithmetic alone (``7 +5 -3 *2``), so a
test problem is never a renamed training problem.
"""

from __future__ import annotations

import random

from tabom.tasks.answers import extract_answer_number, numbers_equal
from tabom.tasks.base import MAX_PROMPT_CHARS, Draft, Problem, TaskFamily, check_range

_NAMES: tuple[tuple[str, str], ...] = (
    ("Ann", "She"), ("Bob", "He"), ("Cy", "He"), ("Dee", "She"), ("Eva", "She"), ("Finn", "He"),
    ("Gus", "He"), ("Ida", "She"), ("Jo", "She"), ("Ken", "He"), ("Lia", "She"), ("Max", "He"),
    ("Nia", "She"), ("Omar", "He"), ("Pia", "She"), ("Raj", "He"), ("Sam", "He"), ("Tess", "She"),
    ("Uma", "She"), ("Vic", "He"), ("Wes", "He"), ("Zoe", "She"),
)
_ITEMS: tuple[str, ...] = (
    "pens", "cards", "eggs", "coins", "books", "cups", "apples", "shells", "stamps", "toys",
    "beads", "balls", "keys", "plums", "hats", "rocks",
)
# Sentence templates per operation; {p} is the pronoun, {k} the operand.
_SAY: dict[str, tuple[str, ...]] = {
    "+": ("{p} gets {k} more.", "{p} finds {k} more.", "{p} buys {k} more."),
    "-": ("{p} gives away {k}.", "{p} loses {k}.", "{p} sells {k}."),
    "*": ("{p} multiplies them by {k}.",),
    "/": ("{p} keeps 1/{k} of them.",),
}
_SHORT: dict[tuple[str, int], str] = {("*", 2): "{p} doubles them.", ("*", 3): "{p} triples them.",
                                      ("/", 2): "{p} halves them."}
_WORD: dict[str, str] = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}


def apply_op(value: int, op: str, k: int) -> int:
    """``value op k`` for the four operations (division is exact by construction)."""
    if op == "+":
        return value + k
    if op == "-":
        return value - k
    if op == "*":
        return value * k
    if op == "/":
        if value % k:
            raise ValueError(f"apply_op: {value} is not divisible by {k}")
        return value // k
    raise ValueError(f"apply_op: op: unknown operation {op!r}")


class MathChain(TaskFamily):
    """Multi-step arithmetic word problems; knobs set the number of steps and number sizes."""

    name = "math_chain"
    domain = "math"

    def __init__(
        self,
        min_ops: int = 2,
        max_ops: int = 3,
        start_range: tuple[int, int] = (1, 9),
        add_range: tuple[int, int] = (1, 5),
        mul_range: tuple[int, int] = (2, 3),
        div_range: tuple[int, int] = (2, 3),
        max_value: int = 20,
        ops: tuple[str, ...] = ("+", "-", "*", "/"),
    ) -> None:
        check_range(self.name, "min_ops..max_ops", min_ops, max_ops, minimum=1)
        for field_name, (lo, hi), minimum in (
            ("start_range", start_range, 0),
            ("add_range", add_range, 1),
            ("mul_range", mul_range, 2),
            ("div_range", div_range, 2),
        ):
            check_range(self.name, field_name, lo, hi, minimum=minimum)
        bad = [op for op in ops if op not in _SAY]
        if not ops or bad:
            raise ValueError(f"{self.name}: ops: expected a non-empty subset of + - * /, got {ops!r}")
        if max_value < start_range[1]:
            raise ValueError(f"{self.name}: max_value: {max_value} is below start_range's top {start_range[1]}")
        self.min_ops, self.max_ops = min_ops, max_ops
        self.start_range, self.add_range = start_range, add_range
        self.mul_range, self.div_range = mul_range, div_range
        self.max_value, self.ops = max_value, tuple(ops)

    def _operands(self, value: int, op: str) -> list[int]:
        """The operands ``k`` that keep ``value op k`` whole and inside ``0..max_value``."""
        if op == "+":
            return [k for k in range(self.add_range[0], self.add_range[1] + 1) if value + k <= self.max_value]
        if op == "-":
            return [k for k in range(self.add_range[0], self.add_range[1] + 1) if k <= value]
        if op == "*":
            return [k for k in range(self.mul_range[0], self.mul_range[1] + 1) if value * k <= self.max_value]
        return [k for k in range(self.div_range[0], self.div_range[1] + 1) if value > 0 and value % k == 0]

    def _steps(self, rng: random.Random) -> tuple[int, list[tuple[str, int]]]:
        while True:
            start = rng.randint(*self.start_range)
            value, steps = start, []
            for _ in range(rng.randint(self.min_ops, self.max_ops)):
                choices = [(op, ks) for op in self.ops if (ks := self._operands(value, op))]
                if not choices:
                    break
                op, ks = rng.choice(choices)
                k = rng.choice(ks)
                steps.append((op, k))
                value = apply_op(value, op, k)
            else:
                return start, steps

    def draft(self, rng: random.Random) -> Draft:
        """A word problem from a random start and steps, a random name and item; the key is the arithmetic."""
        start, steps = self._steps(rng)
        name, pronoun = rng.choice(_NAMES)
        item = rng.choice(_ITEMS)
        sentences = [(_SHORT.get((op, k)) or rng.choice(_SAY[op])).format(p=pronoun, k=k) for op, k in steps]
        prompt = f"{name} has {start} {item}. " + " ".join(sentences) + f" How many {item} now?"
        if len(prompt) > MAX_PROMPT_CHARS:
            prompt = prompt[: -len(f"{item} now?")] + "now?"
        native_lines, ref_parts, value = [], [f"Start with {start}."], start
        for op, k in steps:
            new = apply_op(value, op, k)
            native_lines.append(f"{value}{op}{k}={new}")
            ref_parts.append(f"{value} {_WORD[op]} {k} is {new}.")
            value = new
        native = "\n".join(native_lines) + f"\n#### {value}"
        reference = " ".join(ref_parts) + f" The answer is {value}."
        key = f"{start} " + " ".join(f"{op}{k}" for op, k in steps)
        return Draft(key=key, prompt=prompt, reference=reference, native=native, answer=str(value),
                     meta={"start": start, "steps": [[op, k] for op, k in steps]})

    def verify(self, problem: Problem, output: str) -> bool:
        """The final answer (after ``####`` / "The answer is", else the last number) equals the answer."""
        return numbers_equal(extract_answer_number(output), problem.answer)
