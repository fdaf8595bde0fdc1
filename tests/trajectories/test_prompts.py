"""Prompt JSONL reading (ids, aliases, errors) and the final-answer checker."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tabom.trajectories.prompts import PromptRecord, prompt_id, read_prompts, verify_answer


def test_read_prompts_fields_aliases_and_blank_lines(tmp_path: Path, write_lines: Any) -> None:
    path = write_lines(
        tmp_path / "p.jsonl",
        [
            {"id": "q1", "prompt": "What is 12*3?", "answer": "36", "data_source": "mine"},
            "",
            "   ",
            {"question": "Write add(a, b).", "tests": "assert add(1, 2) == 3"},
            {"id": 7, "prompt": "x?", "answer": 4.5, "tests": ["a", "b"]},
        ],
    )
    recs = read_prompts(path)
    assert recs[0] == PromptRecord("q1", "What is 12*3?", "36", None, "mine")
    assert recs[1].prompt == "Write add(a, b)."
    assert recs[1].tests == ["assert add(1, 2) == 3"]
    assert recs[1].id == prompt_id("Write add(a, b).")
    assert (recs[2].id, recs[2].answer, recs[2].tests) == ("7", "4.5", ["a", "b"])


def test_derived_id_is_stable_hash() -> None:
    """p- + first 16 hex digits of sha256 of the prompt text (computed here independently)."""
    expected = "p-" + hashlib.sha256("hello".encode()).hexdigest()[:16]
    assert prompt_id("hello") == expected
    assert prompt_id("hello") != prompt_id("hello ")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "a"', "json: invalid JSON ("),
        ("[1]", "json: expected a JSON object, got list"),
        ('{"answer": "1"}', "prompt: required field is missing (or its alias 'question')"),
        ('{"prompt": 3}', "prompt: expected a string, got int"),
        ('{"question": "  "}', "question: must not be empty"),
        ('{"prompt": "a", "id": true}', "id: expected a non-empty string or an int, got bool True"),
        ('{"prompt": "a", "id": ""}', "id: expected a non-empty string or an int, got str ''"),
        ('{"prompt": "a", "answer": [1]}', "answer: expected a string or a number, got list"),
        ('{"prompt": "a", "tests": [1]}', "tests: expected a string or a list of strings"),
        ('{"prompt": "a", "data_source": 1}', "data_source: expected a string, got int"),
    ],
)
def test_prompt_errors_name_file_line_field(
    tmp_path: Path, write_lines: Any, line: str, message: str
) -> None:
    path = write_lines(tmp_path / "p.jsonl", ['{"prompt": "ok"}', "", line])
    with pytest.raises(ValueError) as info:
        read_prompts(path)
    assert str(info.value).startswith(f"{path}:3: {message}")


def test_duplicate_ids(tmp_path: Path, write_lines: Any) -> None:
    rows = [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}]
    path = write_lines(tmp_path / "p.jsonl", rows)
    with pytest.raises(ValueError, match=r"p.jsonl:2: id: duplicate id 'a' \(first on line 1\)"):
        read_prompts(path)
    path = write_lines(tmp_path / "q.jsonl", [{"prompt": "same"}, {"prompt": "same"}])
    with pytest.raises(ValueError, match=r"q.jsonl:2: id: duplicate id 'p-"):
        read_prompts(path)


@pytest.mark.parametrize(
    ("output", "answer", "expected"),
    [
        ("so the total is 1,234", "#### 1,234", True),  # GSM8K reference: text after ####
        ("The answer is 1234.", "1,234", True),  # trailing period dropped
        ("It costs $5.00", "5", True),  # $ stripped, 5.00 == 5 numerically
        ("It costs $5.01", "5", False),
        ("first 36 then 35", "36", False),  # only the last number counts
        ("-7 degrees", "-7", True),
        ("no number here", "3", False),
        ("answer: 3", "no number", False),
        ("we get 12, e.g.., done", "12", True),  # digit-less matches like "..," are skipped
    ],
)
def test_verify_answer_final_number(output: str, answer: str, expected: bool) -> None:
    assert verify_answer(output, answer) is expected


HAS_MATH_VERIFY = importlib.util.find_spec("math_verify") is not None


@pytest.mark.skipif(not HAS_MATH_VERIFY, reason="math_verify not installed")
def test_verify_answer_latex_with_math_verify() -> None:
    """\\frac{1}{2} == 0.5 by math_verify; the last-number rule alone would compare 2 with 0.5."""
    assert verify_answer("so the answer is 0.5", r"\frac{1}{2}") is True
    assert verify_answer(r"thus $\boxed{\dfrac{1}{2}}$", r"\frac{1}{2}") is True
    assert verify_answer("so the answer is 2", r"\frac{1}{2}") is False


def test_verify_answer_latex_without_math_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without math_verify a LaTeX reference falls back to the last-number rule: 2 vs 2."""
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import now raises ImportError
    assert verify_answer("so the answer is 0.5", r"\frac{1}{2}") is False
    assert verify_answer("so the answer is 2", r"\frac{1}{2}") is True


def test_verify_answer_calls_math_verify_with_wrapped_gold(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    fake = ModuleType("math_verify")

    def parse(text: str) -> str:
        calls.append(("parse", text))
        return text

    def verify(gold: str, pred: str) -> bool:
        calls.append(("verify", (gold, pred)))
        raise RuntimeError("timeout")  # a failure counts as no match

    fake.parse = parse  # type: ignore[attr-defined]
    fake.verify = verify  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "math_verify", fake)
    assert verify_answer("x = 0.5", r"\sqrt{2}") is False
    assert calls == [
        ("parse", r"$\sqrt{2}$"),
        ("parse", "x = 0.5"),
        ("verify", (r"$\sqrt{2}$", "x = 0.5")),
    ]
