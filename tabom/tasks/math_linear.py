"""``math_linear``: solve a one-variable linear equation for an integer.

    prompt     Solve for x: 3*x+4=19
    native     3*x=19-4=15\\nx=15/3=5\\n#### 5
    reference  Subtract 4 from both sides: 3x = 15. Divide both sides by 3:
               x = 5. The answer is 5.

Five equation shapes (``a*x+b=c``, ``a*x-b=c``, ``b+a*x=c``, ``a*(x+b)=c``,
``x/a+b=c``), four variable letters and three phrasings. The canonical text
used for splits is the shape with its numbers (``ax+b|3|4|5``), independent of
letter and phrasing.
"""

from __future__ import annotations

import random

from tabom.tasks.answers import extract_answer_number, numbers_equal
from tabom.tasks.base import Draft, Problem, TaskFamily, check_range

FORMS: tuple[str, ...] = ("ax+b", "ax-b", "b+ax", "a(x+b)", "x/a+b")
_VARIABLES: tuple[str, ...] = ("x", "y", "n", "m")
_ASK: tuple[str, ...] = ("Solve for {v}: {eq}", "Find {v} if {eq}.", "What is {v} when {eq}?")


def solve_steps(form: str, a: int, b: int, x: int, v: str) -> tuple[str, list[str], list[str]]:
    """The equation, its native working lines and its reference sentences for one instance.

    ``x`` is the solution; ``c`` is derived from it so the answer is exact.
    """
    if form in ("ax+b", "b+ax"):
        c = a * x + b
        eq = f"{a}*{v}+{b}={c}" if form == "ax+b" else f"{b}+{a}*{v}={c}"
        native = [f"{a}*{v}={c}-{b}={c - b}", f"{v}={c - b}/{a}={x}"]
        ref = [f"Subtract {b} from both sides: {a}{v} = {c - b}.", f"Divide both sides by {a}: {v} = {x}."]
    elif form == "ax-b":
        c = a * x - b
        eq = f"{a}*{v}-{b}={c}"
        native = [f"{a}*{v}={c}+{b}={c + b}", f"{v}={c + b}/{a}={x}"]
        ref = [f"Add {b} to both sides: {a}{v} = {c + b}.", f"Divide both sides by {a}: {v} = {x}."]
    elif form == "a(x+b)":
        c = a * (x + b)
        eq = f"{a}*({v}+{b})={c}"
        native = [f"{v}+{b}={c}/{a}={x + b}", f"{v}={x + b}-{b}={x}"]
        ref = [f"Divide both sides by {a}: {v} + {b} = {x + b}.", f"Subtract {b} from both sides: {v} = {x}."]
    elif form == "x/a+b":
        if x % a:
            raise ValueError(f"solve_steps: x: {x} must be a multiple of a={a} for form {form}")
        c = x // a + b
        eq = f"{v}/{a}+{b}={c}"
        native = [f"{v}/{a}={c}-{b}={x // a}", f"{v}={x // a}*{a}={x}"]
        ref = [f"Subtract {b} from both sides: {v}/{a} = {x // a}.", f"Multiply both sides by {a}: {v} = {x}."]
    else:
        raise ValueError(f"solve_steps: form: unknown form {form!r}; expected one of {FORMS}")
    return eq, native, ref


class MathLinear(TaskFamily):
    """Linear equations with an integer solution; knobs set coefficient and solution ranges."""

    name = "math_linear"
    domain = "math"

    def __init__(
        self,
        a_range: tuple[int, int] = (2, 5),
        b_range: tuple[int, int] = (1, 9),
        x_range: tuple[int, int] = (0, 12),
        forms: tuple[str, ...] = FORMS,
    ) -> None:
        check_range(self.name, "a_range", *a_range, minimum=2)
        check_range(self.name, "b_range", *b_range, minimum=1)
        check_range(self.name, "x_range", *x_range)
        bad = [f for f in forms if f not in FORMS]
        if not forms or bad:
            raise ValueError(f"{self.name}: forms: expected a non-empty subset of {FORMS}, got {forms!r}")
        self.a_range, self.b_range, self.x_range, self.forms = a_range, b_range, x_range, tuple(forms)

    def draft(self, rng: random.Random) -> Draft:
        """An equation of a random form with an integer solution; the key is the form and its numbers."""
        form = rng.choice(self.forms)
        a = rng.randint(*self.a_range)
        b = rng.randint(*self.b_range)
        if form == "x/a+b":  # the solution must be a multiple of a
            lo = -(-self.x_range[0] // a)
            hi = self.x_range[1] // a
            x = a * rng.randint(lo, hi) if lo <= hi else a * lo
        else:
            x = rng.randint(*self.x_range)
        v = rng.choice(_VARIABLES)
        eq, native_lines, ref = solve_steps(form, a, b, x, v)
        prompt = rng.choice(_ASK).format(v=v, eq=eq)
        native = "\n".join(native_lines) + f"\n#### {x}"
        reference = " ".join(ref) + f" The answer is {x}."
        return Draft(key=f"{form}|{a}|{b}|{x}", prompt=prompt, reference=reference, native=native,
                     answer=str(x), meta={"form": form, "a": a, "b": b, "variable": v})

    def verify(self, problem: Problem, output: str) -> bool:
        """The final answer (after ``####`` / "The answer is", else the last number) equals x."""
        return numbers_equal(extract_answer_number(output), problem.answer)
