"""User prompt files (JSONL) for `tabom generate`, and a small answer checker.

One JSON object per line:

    {"id": "q1", "prompt": "What is 12*3?", "answer": "36", "data_source": "mydata"}
    {"question": "Write add(a, b).", "tests": ["assert add(1, 2) == 3"]}

- `prompt` (or the release's `question`): required, non-empty string.
- `id`: optional string (an int is turned into its decimal string); when absent it is
  `p-` + the first 16 hex digits of the SHA-256 of the prompt text, so it is stable across runs
  and machines. Ids must be unique within the file.
- `answer`: optional reference answer (a number is turned into its string).
- `tests`: optional string or list of strings (code tests), kept as a list.
- `data_source`: optional string tag.
Blank lines are skipped; a bad line raises `ValueError` with `FILE:LINE: field: what is wrong`.

`verify_answer(output, answer)` compares the last number in each text the way lm-eval's GSM8K
"flexible-extract" finds it (commas and `$` stripped, a trailing period dropped), by numeric
value; when the reference looks like LaTeX and `math_verify` is installed, `math_verify`'s
equivalence decides instead. The extraction is the built-in tasks' own
(`tabom.tasks.answers`), so user data and generated tasks are judged alike.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabom.trajectories.io import PathLike, iter_json_lines


@dataclass(frozen=True)
class PromptRecord:
    """One prompt to decode: its id, text, optional reference answer / code tests / source tag."""

    id: str
    prompt: str
    answer: str | None = None
    tests: list[str] | None = None
    data_source: str | None = None
    where: str = field(default="", compare=False)
    """Where it was read: `FILE:LINE` (empty for records built in memory)."""


def prompt_id(prompt: str) -> str:
    """Stable id derived from the prompt text: `p-` + 16 hex digits of its SHA-256."""
    return "p-" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_prompt(obj: Any, *, path: str = "<memory>", lineno: int = 0) -> PromptRecord:
    """Validate one parsed JSON object of a prompt file; raise `ValueError` naming the field."""

    def err(field_name: str, problem: str) -> ValueError:
        return ValueError(f"{path}:{lineno}: {field_name}: {problem}")

    if not isinstance(obj, dict):
        raise err("json", f"expected a JSON object, got {_kind(obj)}")
    key = "prompt" if "prompt" in obj else "question" if "question" in obj else None
    if key is None:
        raise err("prompt", "required field is missing (or its alias 'question')")
    text = obj[key]
    if not isinstance(text, str):
        raise err(key, f"expected a string, got {_kind(text)}")
    if not text.strip():
        raise err(key, "must not be empty")
    raw_id = obj.get("id")
    if raw_id is None:
        rid = prompt_id(text)
    elif isinstance(raw_id, str) and raw_id:
        rid = raw_id
    elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
        rid = str(raw_id)
    else:
        raise err("id", f"expected a non-empty string or an int, got {_kind(raw_id)} {raw_id!r}")
    answer = obj.get("answer")
    if answer is not None:
        if _is_number(answer):
            answer = str(answer)
        elif not isinstance(answer, str):
            raise err("answer", f"expected a string or a number, got {_kind(answer)}")
    tests = obj.get("tests")
    if tests is not None:
        if isinstance(tests, str):
            tests = [tests]
        elif not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            raise err("tests", "expected a string or a list of strings")
    source = obj.get("data_source")
    if source is not None and not isinstance(source, str):
        raise err("data_source", f"expected a string, got {_kind(source)}")
    return PromptRecord(id=rid, prompt=text, answer=answer, tests=tests, data_source=source,
                        where=f"{path}:{lineno}")


def read_prompts(path: PathLike) -> list[PromptRecord]:
    """Read a prompt JSONL file; blank lines skipped; raise `ValueError` at the first bad line.

    Bad lines (not UTF-8, not JSON, nested too deeply, a bad field, a duplicate id) are named by
    FILE:LINE; a directory raises `ValueError`, a missing file `FileNotFoundError`.
    """
    from tabom.tasks.published import is_published_file, prompt_objects

    records: list[PromptRecord] = []
    first_line: dict[str, int] = {}
    items: Any = iter_json_lines(path)
    if is_published_file(path):  # MixChain-Z-PRM12K / Ling-Coder-SFT as published (parquet, JSON, a folder)
        items = enumerate(prompt_objects(path), start=1)
    for lineno, obj in items:
        if isinstance(obj, ValueError):
            raise obj
        rec = parse_prompt(obj, path=str(path), lineno=lineno)
        if rec.id in first_line:
            first = first_line[rec.id]
            problem = f"duplicate id {rec.id!r} (first on line {first})"
            raise ValueError(f"{path}:{lineno}: id: {problem}")
        first_line[rec.id] = lineno
        records.append(rec)
    return records


def context_limit(model: Any) -> int | None:
    """Positions the model was built for (`backbone.config.max_position_embeddings`), or None."""
    config = getattr(getattr(model, "backbone", None), "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None


def check_prompt_fits(model: Any, n_tokens: int, gen_length: int, where: str) -> None:
    """Raise `ValueError` naming `where` (FILE:LINE, or the task and problem) when a prompt of
    `n_tokens` plus the `gen_length` response tokens exceed the model's positions."""
    limit = context_limit(model)
    if limit is not None and n_tokens + gen_length > limit:
        raise ValueError(
            f"{where}: prompt: {n_tokens} tokens + gen_length {gen_length} = {n_tokens + gen_length} "
            f"exceed the {limit} positions of model {getattr(model, 'name', '?')} "
            "(max_position_embeddings); shorten the prompt or gen_length"
        )


_LATEX_RE = re.compile(r"\\[A-Za-z]+|\^|_\{|\\\(|\\\[")


def _final_number(text: str) -> str | None:
    """The last number in `text` (GSM8K flexible-extract); after `####` only what follows counts."""
    from tabom.tasks.answers import extract_final_number

    if "####" in text:
        text = text.rsplit("####", 1)[1]
    return extract_final_number(text)


def _looks_like_latex(answer: str) -> bool:
    return bool(_LATEX_RE.search(answer))


def _math_verify_equal(output: str, answer: str) -> bool | None:
    """Equivalence by math_verify; None when the package cannot be imported."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    gold_text = answer if ("$" in answer or "\\boxed" in answer) else f"${answer}$"
    try:
        return bool(verify(parse(gold_text), parse(output)))
    except Exception:  # math_verify raises on timeouts / odd input: treat as no match
        return False


def verify_answer(output: str, answer: str) -> bool:
    """True when the model `output` ends on the reference `answer`.

    "The total is $1,234." vs "#### 1,234" -> True (1234 == 1234); "$5.00" vs "5" -> True.
    A reference that looks like LaTeX ("\\frac{1}{2}") is judged by math_verify alone when it is
    installed (so "0.5" matches and a bare "2" does not); without it, by the last-number rule.
    """
    if _looks_like_latex(answer):
        verdict = _math_verify_equal(output, answer)
        if verdict is not None:
            return verdict
    from tabom.tasks.answers import numbers_equal

    return numbers_equal(_final_number(output), _final_number(answer))
