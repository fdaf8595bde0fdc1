"""code_func: verification runs the output with hidden asserts in the sandbox."""

import builtins

import pytest

from tabom.tasks import Problem, get_family
from tabom.tasks import code_func as code_func_module
from tabom.tasks.code_func import compact, extract_code


def _problem(native: str, tests: list[str]) -> Problem:
    return Problem(id="t", family="code_func", domain="code", prompt="Write f(a,b) returning a plus 2 times b.",
                   reference="", native=native, answer=native, meta={"entry": "f", "tests": tests})


HAND = _problem("def f(a,b): return a+2*b", ["assert f(3, 4) == 11", "assert f(-1, 5) == 9"])  # 3+8, -1+10


def test_native_and_reference_pass_and_wrong_bodies_fail() -> None:
    fam = get_family("code_func")
    problems = fam.problems("test", 6, seed=0)
    wrong = [p.native.split(" return ")[0] + " return None" for p in problems]
    outputs = [p.native for p in problems] + [p.reference for p in problems] + wrong
    results = fam.verify_many(problems * 3, outputs)
    assert results == [True] * 12 + [False] * 6, list(zip(outputs, results))


def test_hand_checked_near_miss_is_rejected() -> None:
    """a+3*b gives 15 for (3, 4), not 11."""
    fam = get_family("code_func")
    assert fam.verify(HAND, "def f(a,b): return a+2*b")
    assert not fam.verify(HAND, "def f(a,b): return a+3*b")
    assert not fam.verify(HAND, "def f(a,b) return a+2*b")  # syntax error


def test_prose_around_the_code_is_tolerated() -> None:
    fam = get_family("code_func")
    assert fam.verify(HAND, "Here you go:\ndef f(a, b):\n    return a + 2 * b\nThis adds twice b.")
    assert fam.verify(HAND, "```python\ndef f(a, b):\n    return a + 2 * b\n```")


def test_early_exit_does_not_pass() -> None:
    """exit(0) before the asserts would give status 0; the per-run token must be printed."""
    fam = get_family("code_func")
    assert not fam.verify(HAND, "import os\ndef f(a,b): return 0\nraise SystemExit(0)")


def test_verification_goes_through_the_sandbox_not_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The output sets a marker on builtins: it must not appear here, and run_many must be used."""
    calls: list[int] = []
    real = code_func_module.run_many

    def spy(codes, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(codes))
        return real(codes, **kw)

    monkeypatch.setattr(code_func_module, "run_many", spy)
    out = "import builtins\nbuiltins.TABOM_MARK = 1\ndef f(a,b): return a+2*b"
    assert get_family("code_func").verify(HAND, out)
    assert calls == [1]
    assert not hasattr(builtins, "TABOM_MARK")


def test_hanging_output_times_out_and_fails() -> None:
    fam = get_family("code_func", timeout_s=1.0)
    assert not fam.verify(HAND, "def f(a,b):\n    while True: pass")


def test_hidden_tests_tell_functions_apart() -> None:
    """Every problem's asserts do not all expect the same value (a constant would not pass)."""
    for p in get_family("code_func").problems("train", 300, seed=0):
        expected = {t.rsplit(" == ", 1)[1] for t in p.meta["tests"]}
        assert len(expected) > 1, p.meta["tests"]


def test_helpers() -> None:
    assert compact("max(a, b) + 2 * b") == "max(a,b)+2*b"
    assert extract_code("def f(x): return x\n#### done") == "def f(x): return x\n"


def test_every_template_renders_solutions_that_pass_and_extended_false_keeps_the_first_ones() -> None:
    """Each template (the base ones and those added later) yields a native and a reference solution
    that pass its own hidden asserts, while a body that returns None fails them."""
    import random

    from tabom.tasks.base import draft_fits

    base, extra = code_func_module.TEMPLATES, code_func_module.EXTRA_TEMPLATES
    assert get_family("code_func", extended=False).templates == list(base)
    assert get_family("code_func").templates == list(base + extra)
    assert len(set(base + extra)) == len(base) + len(extra)
    fam = get_family("code_func")
    problems, outputs = [], []
    for i, template in enumerate(base + extra):
        fam.templates = [template]
        d = fam.draft(random.Random(i))
        assert draft_fits(d), d
        p = Problem(id=str(i), family="code_func", domain="code", prompt=d.prompt, reference=d.reference,
                    native=d.native, answer=d.answer, meta=d.meta)
        problems += [p] * 3
        outputs += [d.native, d.reference, d.native.split(" return ")[0] + " return None"]
    results = fam.verify_many(problems, outputs)
    assert results == [True, True, False] * (len(base) + len(extra)), [
        (o, r) for o, r in zip(outputs, results) if r != (not o.endswith("None"))]
