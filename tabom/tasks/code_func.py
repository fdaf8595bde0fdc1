"""``code_func``: write a one-line Python function from a spec in words.

    prompt     Write f(a,b) returning a plus 2 times b.
    native     def f(a,b): return a+2*b
    reference  def f(a, b):\\n    result = a + 2 * b\\n    return result

Verification RUNS the output with hidden asserts in the sandbox
(``tabom.tasks.sandbox``), never in this process; the asserts' expected values
are computed at generation time by evaluating this module's own template code.
A random token printed after the asserts proves they all ran (an early
``exit(0)`` in the output does not pass). The canonical text used for splits is
the template with its constants and fixed argument names, so a test problem is
never a renamed training problem.
"""

from __future__ import annotations

import random
import re
import secrets
import string
from collections.abc import Callable
from functools import lru_cache

from tabom.tasks.base import Draft, Problem, TaskFamily, check_range
from tabom.tasks.sandbox import SandboxResult, run_many

# (kind, spaced code, words); constants: K (k_range), J (j_range), M (1..12, compared with
# inputs), C and D (letters), W (a word).
# Canonical argument names: A, B (ints), S (a string), L (a list of ints).
TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("int2", "A + K * B", "A plus K times B"),
    ("int2", "K * A + B", "K times A plus B"),
    ("int2", "K * A - B", "K times A minus B"),
    ("int2", "A - K * B", "A minus K times B"),
    ("int2", "A * B + J", "A times B plus J"),
    ("int2", "A * B - J", "A times B minus J"),
    ("int2", "A + B + J", "A plus B plus J"),
    ("int2", "K * (A + B)", "K times the sum of A and B"),
    ("int2", "K * (A - B)", "K times the difference A minus B"),
    ("int2", "(A + B) % K", "the sum of A and B modulo K"),
    ("int2", "max(A, B) + J", "the larger of A and B, plus J"),
    ("int2", "min(A, B) * K", "the smaller of A and B, times K"),
    ("int2", "abs(A - B) + J", "the absolute difference of A and B, plus J"),
    ("int2", "A * A + J * B", "A squared plus J times B"),
    ("int2", "K * A + J * B", "K times A plus J times B"),
    ("int2", "A + K * B + J", "A plus K times B plus J"),
    ("int2", "K * A - J * B", "K times A minus J times B"),
    ("int2", "K * A + B - J", "K times A plus B minus J"),
    ("int2", "A > B + M", "whether A is greater than B plus M"),
    ("int2", "(A + B) % K == 0", "whether A plus B is divisible by K"),
    ("int1", "A * A + J", "A squared plus J"),
    ("int1", "A * K + J", "A times K plus J"),
    ("int1", "A * K - J", "A times K minus J"),
    ("int1", "K * (A + J)", "K times the sum of A and J"),
    ("int1", "A // K + J", "A floor-divided by K, plus J"),
    ("int1", "A % K + J", "the remainder of A divided by K, plus J"),
    ("int1", "abs(A - J)", "the absolute difference of A and J"),
    ("int1", "max(A, M) * K", "the larger of A and M, times K"),
    ("int1", "K * A * A + J", "K times A squared plus J"),
    ("int1", "K * (A - J)", "K times the difference A minus J"),
    ("int1", "A // K - J", "A floor-divided by K, minus J"),
    ("int1", "A % K == 0", "whether A is divisible by K"),
    ("str", "S * K", "S repeated K times"),
    ("str", "S[::-1]", "S reversed"),
    ("str", "S.upper()", "S in capital letters"),
    ("str", "S[:K]", "the first K characters of S"),
    ("str", "S[-K:]", "the last K characters of S"),
    ("str", "len(S) + J", "the length of S plus J"),
    ("str", "S.count('C')", "the number of times 'C' occurs in S"),
    ("str", "S.replace('C', 'D')", "S with every 'C' replaced by 'D'"),
    ("str", "S + 'W'", "S followed by 'W'"),
    ("str", "'W' + S", "'W' followed by S"),
    ("str", "S.count('C') + J", "the number of times 'C' occurs in S plus J"),
    ("str", "len(S) * K + J", "the length of S times K plus J"),
    ("str", "S[:K] + 'W'", "the first K characters of S followed by 'W'"),
    ("str", "S * K + 'W'", "S repeated K times, followed by 'W'"),
    ("str", "S.startswith('C')", "whether S starts with 'C'"),
    ("list", "sum(L) + J", "the sum of L plus J"),
    ("list", "max(L) * K", "the largest item of L times K"),
    ("list", "min(L) + J", "the smallest item of L plus J"),
    ("list", "len(L) * K", "the length of L times K"),
    ("list", "[v * K for v in L]", "L with each item multiplied by K"),
    ("list", "[v + J for v in L]", "L with J added to each item"),
    ("list", "[v for v in L if v > M]", "the items of L that are greater than M"),
    ("list", "sum(L) * K + J", "the sum of L times K plus J"),
    ("list", "[v * K + J for v in L]", "L with each item multiplied by K then J added"),
    ("list", "max(L) - min(L) + J", "the largest item of L minus the smallest, plus J"),
    ("list", "sum(v * v for v in L)", "the sum of the squares of the items of L"),
    ("list", "len([v for v in L if v % K == 0])", "how many items of L are divisible by K"),
)
# Added in the sixth session (2026-11-30): harder shapes (conditional expressions, three-part
# compositions, words in another order than the code), nearly all with two constants, so that
# each has many problems in every split. Without them the test split was mostly the two-constant
# templates above, which the tiny model had learnt (docs/tiny_model.md).
EXTRA_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("int2", "A if A > B + M else B + J", "A if A is greater than B plus M, else B plus J"),
    ("int2", "A * K if A > B else B * J", "A times K if A is greater than B, else B times J"),
    ("int2", "(A - B) * K + J", "the difference A minus B, times K, plus J"),
    ("int2", "max(A, B) * K - J", "the larger of A and B, times K, minus J"),
    ("int2", "min(A + K, B + J)", "the smaller of A plus K and B plus J"),
    ("int2", "A // K + B * J", "A floor-divided by K, plus B times J"),
    ("int2", "abs(A - B) * K + J", "the absolute difference of A and B, times K, plus J"),
    ("int1", "A * K if A > M else A + J", "A times K if A is greater than M, else A plus J"),
    ("int1", "(A + J) % K", "the sum of A and J modulo K"),
    ("int1", "A * A - K * A + J", "A squared minus K times A, plus J"),
    ("int1", "max(A * K, J)", "the larger of A times K and J"),
    ("int1", "A // K * K + J", "A rounded down to a multiple of K, plus J"),
    ("str", "S[K:] + 'W'", "S without its first K characters, followed by 'W'"),
    ("str", "S.count('C') * K + J", "the number of times 'C' occurs in S, times K, plus J"),
    ("str", "S[:K].upper() + 'W'", "the first K characters of S in capital letters, followed by 'W'"),
    ("str", "S.replace('C', 'D') + 'W'", "S with every 'C' replaced by 'D', followed by 'W'"),
    ("str", "S.count('C') + S.count('D')", "the number of times 'C' or 'D' occurs in S"),
    ("list", "[v * K for v in L if v > M]", "the items of L greater than M, each multiplied by K"),
    ("list", "(sum(L) - max(L)) * K + J", "the sum of L minus its largest item, times K, plus J"),
    ("list", "[v % K + J for v in L]", "L with each item taken modulo K, then J added"),
    ("list", "len([v for v in L if v > M]) * K", "how many items of L are greater than M, times K"),
    ("list", "[v - J for v in L if v % K == 0]", "the items of L divisible by K, each minus J"),
)
KINDS: tuple[str, ...] = ("int1", "int2", "str", "list")
_ARGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "int1": (("a",), ("x",), ("n",), ("k",)),
    "int2": (("a", "b"), ("x", "y"), ("m", "n"), ("p", "q")),
    "str": (("s",), ("w",), ("t",)),
    "list": (("xs",), ("nums",), ("vals",)),
}
_CANON: dict[str, tuple[str, ...]] = {"int1": ("A",), "int2": ("A", "B"), "str": ("S",), "list": ("L",)}
_WORDS: tuple[str, ...] = (
    "ab", "go", "hi", "ok", "up", "yes", "no", "end", "top", "red", "sky", "cat", "dog", "sun",
    "fox", "map", "pen", "cup", "box", "zip", "log", "net", "key", "owl", "ant", "bee", "elk",
)
_FUNCS: tuple[str, ...] = ("f", "g", "h")
_SAFE_BUILTINS = {"max": max, "min": min, "abs": abs, "len": len, "sum": sum, "sorted": sorted}
_CONST_RE = re.compile(r"\b[KJMCDW]\b")
_ARG_RE = re.compile(r"\b[ABSL]\b")


@lru_cache(maxsize=4096)
def _compile(canon: tuple[str, ...], code: str) -> Callable[..., object]:
    """The template code as a Python function of the canonical arguments (our own code only)."""
    return eval(f"lambda {','.join(canon)}: {code}", {"__builtins__": _SAFE_BUILTINS})


def compact(code: str) -> str:
    """Drop the spaces around operators and punctuation: ``a + 2 * b`` -> ``a+2*b``."""
    return re.sub(r"\s*([-+*/%<>=,()\[\]:])\s*", r"\1", code)


def extract_code(output: str) -> str:
    """The Python code in a model output: a fenced block if any, else from the first ``def`` line.

    Lines after the function that are neither indented, blank, nor another
    ``def``/``import``/``from`` line are dropped (trailing prose or ``####`` lines).
    """
    fence = re.search(r"```(?:python|py)?\n(.*?)```", output, re.DOTALL)
    if fence:
        return fence.group(1)
    lines = output.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("def ")), None)
    if start is None:
        return output
    kept = [lines[start].lstrip()]
    for ln in lines[start + 1:]:
        if ln.strip() == "" or ln[:1] in (" ", "\t") or ln.startswith(("def ", "import ", "from ")):
            kept.append(ln)
        else:
            break
    return "\n".join(kept).rstrip() + "\n"


class CodeFunc(TaskFamily):
    """One-line functions from word specs; knobs set constant ranges and which kinds appear.

    ``extended=False`` keeps only the 59 first templates (``TEMPLATES``), the family as it was
    when the shipped tiny model's first two training stages ran (docs/tiny_model.md).
    """

    name = "code_func"
    domain = "code"

    def __init__(
        self,
        kinds: tuple[str, ...] = KINDS,
        k_range: tuple[int, int] = (2, 9),
        j_range: tuple[int, int] = (1, 20),
        n_tests: int = 5,
        timeout_s: float = 5.0,
        workers: int = 2,
        extended: bool = True,
    ) -> None:
        bad = [k for k in kinds if k not in KINDS]
        if not kinds or bad:
            raise ValueError(f"{self.name}: kinds: expected a non-empty subset of {KINDS}, got {kinds!r}")
        check_range(self.name, "k_range", *k_range, minimum=2)
        check_range(self.name, "j_range", *j_range, minimum=1)
        if n_tests < 1:
            raise ValueError(f"{self.name}: n_tests: need at least one test, got {n_tests}")
        pool = TEMPLATES + EXTRA_TEMPLATES if extended else TEMPLATES
        self.templates = [t for t in pool if t[0] in kinds]
        self.k_range, self.j_range, self.n_tests = k_range, j_range, n_tests
        self.timeout_s, self.workers = timeout_s, workers

    def _inputs(self, kind: str, letter: str, rng: random.Random) -> list[tuple]:
        """``n_tests`` argument tuples; strings often contain (or start with) ``letter``."""
        cases: list[tuple] = []
        while len(cases) < self.n_tests:
            if kind == "int1":
                case: tuple = (rng.randint(-9, 30),)
            elif kind == "int2":
                case = (rng.randint(-9, 20), rng.randint(-9, 20))
            elif kind == "str":
                chars = [rng.choice(string.ascii_lowercase) for _ in range(rng.randint(6, 9))]
                for _ in range(rng.randint(0, 2) if len(cases) % 2 else 0):
                    chars[rng.randrange(len(chars))] = letter
                if len(cases) == 1:
                    chars[0] = letter
                case = ("".join(chars),)
            else:
                case = ([rng.randint(-5, 20) for _ in range(rng.randint(3, 6))],)
            if case not in cases:
                cases.append(case)
        return cases

    def draft(self, rng: random.Random) -> Draft:
        """Draw a key with :meth:`draft_key`, then render it (tests and names) with the same ``rng``."""
        key, render = self.draft_key(rng)
        return render(rng)

    def draft_key(self, rng: random.Random) -> tuple[str, Callable[[random.Random], Draft]]:
        """Choose template and constants (the key) now; tests and names when rendered."""
        kind, code, words = rng.choice(self.templates)
        k, j, small = rng.randint(*self.k_range), rng.randint(*self.j_range), rng.randint(1, 12)
        c, d = rng.sample(string.ascii_lowercase, 2)
        w = rng.choice(_WORDS)
        subs = {"K": str(k), "J": str(j), "M": str(small), "C": c, "D": d, "W": w}
        fill = lambda text: _CONST_RE.sub(lambda m: subs[m.group(0)], text)  # noqa: E731
        code, words = fill(code), fill(words)
        key = f"{kind}|{code}"
        return key, lambda r: self._render(key, kind, code, words, c, r)

    def _render(self, key: str, kind: str, code: str, words: str, letter: str, rng: random.Random) -> Draft:
        canon = _CANON[kind]
        func = _compile(canon, code)
        for _ in range(20):  # tests whose expected values all coincide would pass a constant
            cases = self._inputs(kind, letter, rng)
            expected = [func(*case) for case in cases]
            if len({repr(e) for e in expected}) > 1:
                break
        names = rng.choice(_ARGS[kind])
        fn = rng.choice(_FUNCS)
        rename = dict(zip(canon, names))
        surface = lambda text: _ARG_RE.sub(lambda m: rename[m.group(0)], text)  # noqa: E731
        body = surface(code)
        tests = [f"assert {fn}({', '.join(map(repr, case))}) == {e!r}" for case, e in zip(cases, expected)]
        sig = ",".join(names)
        prompt = f"Write {fn}({sig}) returning {surface(words)}."
        native = f"def {fn}({sig}): return {compact(body)}"
        reference = f"def {fn}({', '.join(names)}):\n    result = {body}\n    return result"
        return Draft(key=key, prompt=prompt, reference=reference, native=native, answer=native,
                     meta={"entry": fn, "tests": tests})

    def program(self, problem: Problem, output: str, token: str) -> str:
        """The script the sandbox runs: the extracted code, the hidden asserts, then ``token``."""
        return extract_code(output) + "\n\n" + "\n".join(problem.meta["tests"]) + f"\nprint({token!r})\n"

    def _passed(self, result: SandboxResult, token: str) -> bool:
        return result.ok and result.stdout.rstrip().endswith(token)

    def verify(self, problem: Problem, output: str) -> bool:
        """Run the output plus the hidden asserts in the sandbox; True when all pass."""
        return self.verify_many([problem], [output])[0]

    def verify_many(self, problems: list[Problem], outputs: list[str]) -> list[bool]:
        """Sandboxed runs, ``workers`` at a time; results in input order."""
        if len(problems) != len(outputs):
            raise ValueError(f"verify_many: outputs: {len(outputs)} outputs for {len(problems)} problems")
        tokens = [f"PASSED-{secrets.token_hex(8)}" for _ in problems]
        codes = [self.program(p, o, t) for p, o, t in zip(problems, outputs, tokens)]
        results = run_many(codes, workers=self.workers, timeout_s=self.timeout_s)
        return [self._passed(r, t) for r, t in zip(results, tokens)]
