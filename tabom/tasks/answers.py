"""Answer extraction shared by verifiers and by verification of user data.

Two conventions are understood:

* a marked final answer: the rest of the line after the last ``####``, or
  else after the last "The answer is" / "Answer:" (any case);
* GSM8K "flexible extract" (as in lm-eval): the last number in the text, with
  ``$`` and thousands commas dropped.

>>> extract_final_number("3+4=7\\n7*2=14\\n#### 14")
'14'
>>> extract_answer_number("We get 12 then 9. The answer is 9.")
'9'
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# A number: optional sign (only when not glued to a word or ')' on its left, so
# "12-3" reads as 12 and 3), optional $, digits with optional thousands commas, decimals.
_NUMBER_RE = re.compile(r"(?:(?<![\w)])-)?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_MARKERS_RE = re.compile(r"####|the answer is:?|answer:", re.IGNORECASE)


def find_numbers(text: str) -> list[str]:
    """All numbers in reading order, with ``$`` and commas removed (not otherwise normalized)."""
    return [m.group(0).replace("$", "").replace(",", "") for m in _NUMBER_RE.finditer(text)]


def extract_final_number(text: str) -> str | None:
    """The last number in ``text`` (commas and ``$`` stripped), or None when there is none."""
    nums = find_numbers(text)
    return nums[-1] if nums else None


def normalize_number(text: str) -> str | None:
    """A canonical decimal string, or None when ``text`` is not a single number.

    ``" $1,200.50 "`` -> ``"1200.5"``, ``"14.0"`` -> ``"14"``, ``"+3"`` -> ``"3"``,
    ``"-0"`` -> ``"0"``, ``"7."`` -> ``"7"``.
    """
    s = text.strip().replace("$", "").replace(",", "")
    if s.endswith("."):
        s = s[:-1]
    if s.startswith("+"):
        s = s[1:]
    if not re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)", s):
        return None
    try:
        value = Decimal(s)
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_marked_answer(text: str) -> str | None:
    """The rest of the line after the last answer marker, stripped of spaces and a final period."""
    matches = list(_MARKERS_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end():].split("\n", 1)[0].strip()
    if rest.endswith("."):
        rest = rest[:-1].rstrip()
    return rest


def extract_answer_number(text: str) -> str | None:
    """The normalized numeric answer: the first number after the last marker, else the last number."""
    marked = extract_marked_answer(text)
    if marked is not None:
        nums = find_numbers(marked)
        if nums:
            return normalize_number(nums[0])
        return None
    last = extract_final_number(text)
    return normalize_number(last) if last is not None else None


def numbers_equal(a: str | None, b: str | None) -> bool:
    """True when both parse as numbers and are equal after normalization."""
    if a is None or b is None:
        return False
    na, nb = normalize_number(a), normalize_number(b)
    return na is not None and na == nb


def extract_answer_text(text: str) -> str:
    """A free-text answer: after the last marker if any, else the last non-empty line.

    Surrounding quotes/backticks and a final period are removed.
    """
    marked = extract_marked_answer(text)
    if marked is None:
        lines = [ln.strip() for ln in text.strip().split("\n") if ln.strip()]
        marked = lines[-1] if lines else ""
        if marked.endswith("."):
            marked = marked[:-1].rstrip()
    if len(marked) >= 2 and marked[0] == marked[-1] and marked[0] in "\"'`":
        marked = marked[1:-1]
    return marked.strip()
