"""``code_trace``: predict what a tiny Python program prints.

Three program shapes, generated as data and evaluated by this module's own
arithmetic (the test suite checks it against running the program text)::

    straight            loop                        branch
    a=3                 s=2                         a=7
    b=a+4               for i in range(3):          if a>5:
    a=b*2                   s=s+i                       a=a-3
    print(a-b)          print(s)                    else:
                                                        a=a+2
                                                    print(a)

The native solution traces each value (``a=3\\nb=3+4=7\\na=7*2=14\\n14-7=7\\n#### 7``);
the reference narrates it in sentences ending "The answer is 7.". The
canonical text used for splits is the program with its variables renamed to
fixed letters, so a renamed copy of a training program is never a test problem.
"""

from __future__ import annotations

import random
import re

from tabom.tasks.answers import extract_answer_number, numbers_equal
from tabom.tasks.base import Draft, Problem, TaskFamily, check_range

KINDS: tuple[str, ...] = ("straight", "loop", "branch")
_NAME_SETS: tuple[tuple[str, str, str], ...] = (("a", "b", "c"), ("x", "y", "z"), ("p", "q", "r"), ("u", "v", "w"))
_LOOP_NAMES: tuple[tuple[str, str], ...] = (("s", "i"), ("t", "i"), ("n", "j"), ("k", "j"))
_ASK: tuple[str, ...] = ("What does this print?", "Output of this code?")
_CANON = ("A", "B", "C")  # canonical variable names used in split keys
_LIMIT = 999  # every value stays within -_LIMIT.._LIMIT


def binop(x: int, op: str, y: int) -> int:
    """Python semantics of ``x op y`` for + - * // %."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "//":
        return x // y
    if op == "%":
        return x % y
    raise ValueError(f"binop: op: unknown operator {op!r}")


_CMP = {">": lambda x, y: x > y, "<": lambda x, y: x < y, ">=": lambda x, y: x >= y, "<=": lambda x, y: x <= y}
_CMP_WORD = {">": ">", "<": "<", ">=": ">=", "<=": "<="}


class CodeTrace(TaskFamily):
    """Trace straight-line code, a one-line ``for`` loop, or an ``if/else``; knobs set sizes."""

    name = "code_trace"
    domain = "code"

    def __init__(
        self,
        kinds: tuple[str, ...] = KINDS,
        n_statements: tuple[int, int] = (2, 3),
        const_range: tuple[int, int] = (1, 5),
        loop_range: tuple[int, int] = (2, 3),
        use_floordiv: bool = False,
    ) -> None:
        bad = [k for k in kinds if k not in KINDS]
        if not kinds or bad:
            raise ValueError(f"{self.name}: kinds: expected a non-empty subset of {KINDS}, got {kinds!r}")
        check_range(self.name, "n_statements", *n_statements, minimum=1)
        check_range(self.name, "const_range", *const_range, minimum=1)
        check_range(self.name, "loop_range", *loop_range, minimum=1)
        self.kinds, self.n_statements = tuple(kinds), n_statements
        self.const_range, self.loop_range = const_range, loop_range
        self.ops = ("+", "-", "*", "//", "%") if use_floordiv else ("+", "-", "*")

    # -- generators: each returns (canonical lines, native lines, reference sentences, answer)
    def _straight(self, rng: random.Random) -> tuple[list[str], list[str], list[str], int]:
        env: dict[str, int] = {}
        first = rng.randint(*self.const_range)
        env["A"] = first
        lines, native, ref = [f"A={first}"], [f"A={first}"], [f"A is {first}."]
        for _ in range(rng.randint(*self.n_statements) - 1):
            fresh = [v for v in _CANON if v not in env]
            target = fresh[0] if fresh and rng.random() < 0.6 else rng.choice(sorted(env))
            left = rng.choice(sorted(env))
            op = rng.choice(self.ops)
            if op in ("//", "%"):
                right = str(rng.randint(max(2, self.const_range[0]), max(2, self.const_range[1])))
                rval = int(right)
            elif rng.random() < 0.5:
                right = str(rng.randint(*self.const_range))
                rval = int(right)
            else:
                right = rng.choice(sorted(env))
                rval = env[right]
            lval = env[left]
            value = binop(lval, op, rval)
            env[target] = value
            lines.append(f"{target}={left}{op}{right}")
            native.append(f"{target}={lval}{op}{rval}={value}")
            ref.append(f"{target} is {lval} {op} {rval} = {value}.")
        if len(env) >= 2 and rng.random() < 0.5:
            x, y = rng.sample(sorted(env), 2)
            op = rng.choice(("+", "-", "*"))
            answer = binop(env[x], op, env[y])
            lines.append(f"print({x}{op}{y})")
            native.append(f"{env[x]}{op}{env[y]}={answer}")
            ref.append(f"It prints {env[x]} {op} {env[y]} = {answer}.")
        else:
            x = rng.choice(sorted(env))
            answer = env[x]
            lines.append(f"print({x})")
            ref.append(f"It prints {x}, which is {answer}.")
        return lines, native, ref, answer

    def _loop(self, rng: random.Random) -> tuple[list[str], list[str], list[str], int]:
        s0 = rng.randint(0, self.const_range[1])
        n = rng.randint(*self.loop_range)
        k = rng.randint(max(2, self.const_range[0]), max(2, min(3, self.const_range[1])))
        body = rng.choice(("A+B", "A-B", f"A+{k}", f"A*{k}", f"A+B*{k}", f"A-{k}", "A+B+B"))
        lines = [f"A={s0}", f"for B in range({n}):", f"    A={body}", "print(A)"]
        native, values, s = [f"A={s0}"], [], s0
        for i in range(n):
            s = _eval_body(body, s, i)
            values.append(s)
            native.append(f"B={i} A={s}")
        ref = [f"A starts at {s0}.", f"As B runs from 0 to {n - 1}, A becomes " + ", ".join(map(str, values)) + "."]
        return lines, native, ref, s

    def _branch(self, rng: random.Random) -> tuple[list[str], list[str], list[str], int]:
        a = rng.randint(self.const_range[0], 2 * self.const_range[1] + 2)
        cmp = rng.choice(tuple(_CMP))
        t = rng.randint(*self.const_range)
        op1, op2 = rng.choice(("+", "-", "*")), rng.choice(("+", "-", "*"))
        k1, k2 = rng.randint(*self.const_range), rng.randint(*self.const_range)
        lines = [f"A={a}", f"if A{cmp}{t}:", f"    A=A{op1}{k1}", "else:", f"    A=A{op2}{k2}", "print(A)"]
        cond = _CMP[cmp](a, t)
        op, k = (op1, k1) if cond else (op2, k2)
        value = binop(a, op, k)
        native = [f"A={a}", f"{a}{cmp}{t} {cond}", f"A={a}{op}{k}={value}"]
        word = "true" if cond else "false"
        ref = [f"A is {a}.", f"{a} {_CMP_WORD[cmp]} {t} is {word}, so A becomes {a} {op} {k} = {value}."]
        return lines, native, ref, value

    def draft(self, rng: random.Random) -> Draft:
        """A program of a random kind (redrawn until its answer is within +-999), its variables renamed."""
        while True:
            kind = rng.choice(self.kinds)
            lines, native, ref, answer = getattr(self, f"_{kind}")(rng)
            if abs(answer) <= _LIMIT:
                break
        names = rng.choice(_LOOP_NAMES) if kind == "loop" else rng.choice(_NAME_SETS)
        rename = dict(zip(_CANON, names))

        def surface(text: str) -> str:
            return re.sub(r"\b[ABC]\b", lambda m: rename[m.group(0)], text)

        program = "\n".join(surface(ln) for ln in lines)
        prompt = rng.choice(_ASK) + "\n" + program
        native_text = "\n".join(surface(ln) for ln in native) + f"\n#### {answer}"
        reference = " ".join(surface(s) for s in ref) + f" The answer is {answer}."
        return Draft(key=kind + "\n" + "\n".join(lines), prompt=prompt, reference=reference,
                     native=native_text, answer=str(answer), meta={"kind": kind, "program": program})

    def verify(self, problem: Problem, output: str) -> bool:
        """The final answer (after ``####`` / "The answer is", else the last number) equals the output."""
        return numbers_equal(extract_answer_number(output), problem.answer)


def _eval_body(body: str, a: int, b: int) -> int:
    """Evaluate one loop body template (``A+B``, ``A*3``, ``A+B*2``, ...) with A=a, B=b."""
    if body == "A+B+B":
        return a + b + b
    if body.startswith("A+B*"):
        return a + b * int(body[4:])
    op, rhs = body[1], body[2:]
    return binop(a, op, b if rhs == "B" else int(rhs))
