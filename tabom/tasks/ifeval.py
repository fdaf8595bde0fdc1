"""IFEval's verifiable instructions, checked offline with no extra data or packages.

lm-eval ships IFEval's checkers (``lm_eval.tasks.ifeval``), but they import ``langdetect`` and
``immutabledict`` and need nltk's ``punkt`` data, none of which can be fetched here; so this
module checks the instruction ids itself, following the public IFEval definitions:

    followed = check_instruction("punctuation:no_comma", {}, "no commas here")   # True
    strict, loose = score_ifeval(["punctuation:no_comma"], [{}], response)      # [True], [True]

*Strict* checks the response as given; *loose* also accepts it when one of its variants passes
(first line dropped, last line dropped, both, each with and without ``*`` removed).

Every id of the English IFEval release is covered except ``language:response_language``, which
needs a language detector: it is checked with ``langdetect`` when that package imports, and
otherwise counts as not followed and is listed in ``unsupported_ids()``. Sentence and word
counts use simple regular expressions instead of nltk's tokenizers (see docs/evaluation.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Kwargs = dict[str, Any]


def _compare(count: int, relation: str, target: int) -> bool:
    """IFEval's two relations: 'less than' (count < target) and 'at least' (count >= target)."""
    if relation == "less than":
        return count < target
    if relation == "at least":
        return count >= target
    raise ValueError(f"relation: {relation!r} is not 'less than' or 'at least'")


def count_words(text: str) -> int:
    """Runs of word characters (what nltk's ``RegexpTokenizer(r'\\w+')`` counts)."""
    return len(re.findall(r"\w+", text))


def count_sentences(text: str) -> int:
    """Non-empty pieces of ``text`` split after '.', '!' or '?' followed by whitespace or the end."""
    pieces = re.split(r"(?<=[.!?])\s+", text.strip())
    return sum(1 for p in pieces if re.search(r"\w", p))


def _paragraphs(text: str, pattern: str) -> list[str] | None:
    """Non-empty paragraphs split by ``pattern``; None when an empty one sits in the middle."""
    parts = re.split(pattern, text)
    out: list[str] = []
    for index, part in enumerate(parts):
        if not part.strip():
            if 0 < index < len(parts) - 1:
                return None
            continue
        out.append(part)
    return out


# --------------------------------------------------------------------------- checkers
def _no_comma(r: str, kw: Kwargs) -> bool:
    return "," not in r


def _lowercase(r: str, kw: Kwargs) -> bool:
    return r == r.lower()


def _capital(r: str, kw: Kwargs) -> bool:
    return r == r.upper()


def _capital_word_frequency(r: str, kw: Kwargs) -> bool:
    words = re.findall(r"\b\w+\b", r)
    caps = sum(1 for w in words if w.isupper())
    return _compare(caps, kw["capital_relation"], int(kw["capital_frequency"]))


def _quotation(r: str, kw: Kwargs) -> bool:
    s = r.strip()
    return len(s) > 1 and s[0] == '"' and s[-1] == '"'


def _end_checker(r: str, kw: Kwargs) -> bool:
    return r.strip().strip('"').lower().endswith(str(kw["end_phrase"]).strip().lower())


def _postscript(r: str, kw: Kwargs) -> bool:
    marker = str(kw["postscript_marker"]).strip()
    low = r.lower()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    return bool(re.findall(pattern, low, flags=re.MULTILINE))


def _placeholders(r: str, kw: Kwargs) -> bool:
    return len(re.findall(r"\[.*?\]", r)) >= int(kw["num_placeholders"])


def _bullet_lists(r: str, kw: Kwargs) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", r, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", r, flags=re.MULTILINE)
    return len(stars) + len(dashes) == int(kw["num_bullets"])


def _constrained_response(r: str, kw: Kwargs) -> bool:
    options = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
    return any(o in r.strip() for o in options)


def _highlighted_sections(r: str, kw: Kwargs) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", r) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", r) if h.removeprefix("**").removesuffix("**").strip()]
    return len(single) + len(double) >= int(kw["num_highlights"])


def _multiple_sections(r: str, kw: Kwargs) -> bool:
    splitter = str(kw["section_spliter"]).strip()
    sections = re.split(r"\s?" + re.escape(splitter) + r"\s?\d+\s?", r)
    return len(sections) - 1 >= int(kw["num_sections"])


def _json_format(r: str, kw: Kwargs) -> bool:
    s = r.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        if s.startswith(prefix):
            s = s[len(prefix):]
            break
    s = s.removesuffix("```").strip()
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


def _title(r: str, kw: Kwargs) -> bool:
    return any(t[2:-2].strip() for t in re.findall(r"<<[^\n]+>>", r))


def _two_responses(r: str, kw: Kwargs) -> bool:
    parts = r.split("******")
    valid = []
    for index, part in enumerate(parts):
        if not part.strip():
            if 0 < index < len(parts) - 1:
                return False
            continue
        valid.append(part.strip())
    return len(valid) == 2 and valid[0] != valid[1]


def _repeat_prompt(r: str, kw: Kwargs) -> bool:
    return r.strip().lower().startswith(str(kw["prompt_to_repeat"]).strip().lower())


def _existence(r: str, kw: Kwargs) -> bool:
    return all(re.search(re.escape(k), r, flags=re.IGNORECASE) for k in kw["keywords"])


def _frequency(r: str, kw: Kwargs) -> bool:
    n = len(re.findall(re.escape(str(kw["keyword"])), r, flags=re.IGNORECASE))
    return _compare(n, kw["relation"], int(kw["frequency"]))


def _forbidden_words(r: str, kw: Kwargs) -> bool:
    return not any(re.search(r"\b" + re.escape(w) + r"\b", r, flags=re.IGNORECASE) for w in kw["forbidden_words"])


def _letter_frequency(r: str, kw: Kwargs) -> bool:
    n = r.lower().count(str(kw["letter"]).lower())
    return _compare(n, kw["let_relation"], int(kw["let_frequency"]))


def _number_sentences(r: str, kw: Kwargs) -> bool:
    return _compare(count_sentences(r), kw["relation"], int(kw["num_sentences"]))


def _number_paragraphs(r: str, kw: Kwargs) -> bool:
    paras = _paragraphs(r, r"\s?\*\*\*\s?")
    return paras is not None and len(paras) == int(kw["num_paragraphs"])


def _number_words(r: str, kw: Kwargs) -> bool:
    return _compare(count_words(r), kw["relation"], int(kw["num_words"]))


def _nth_paragraph_first_word(r: str, kw: Kwargs) -> bool:
    paras = _paragraphs(r, r"\n\n")
    nth = int(kw["nth_paragraph"])
    if paras is None or len(paras) != int(kw["num_paragraphs"]) or not 1 <= nth <= len(paras):
        return False
    words = paras[nth - 1].strip().split()
    if not words:
        return False
    first = re.sub(r"[^\w]", "", words[0]).lower()
    return first == str(kw["first_word"]).strip().lower()


def _response_language(r: str, kw: Kwargs) -> bool:
    import langdetect  # noqa: PLC0415  (optional; see unsupported_ids)

    try:
        return bool(langdetect.detect(r) == kw["language"])
    except langdetect.LangDetectException:
        return True


CHECKERS: dict[str, Callable[[str, Kwargs], bool]] = {
    "punctuation:no_comma": _no_comma,
    "change_case:english_lowercase": _lowercase,
    "change_case:english_capital": _capital,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "startend:quotation": _quotation,
    "startend:end_checker": _end_checker,
    "detectable_content:postscript": _postscript,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_format:number_bullet_lists": _bullet_lists,
    "detectable_format:constrained_response": _constrained_response,
    "detectable_format:number_highlighted_sections": _highlighted_sections,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:json_format": _json_format,
    "detectable_format:title": _title,
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": _repeat_prompt,
    "keywords:existence": _existence,
    "keywords:frequency": _frequency,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:letter_frequency": _letter_frequency,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:number_words": _number_words,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "language:response_language": _response_language,
}


def unsupported_ids() -> list[str]:
    """Instruction ids that cannot be checked in this environment (always scored as not followed)."""
    try:
        import langdetect  # noqa: F401, PLC0415
    except ImportError:
        return ["language:response_language"]
    return []


def check_instruction(instruction_id: str, kwargs: Kwargs, response: str) -> bool:
    """Whether ``response`` follows one instruction (strict: the response as given).

    ``kwargs`` may hold ``None`` values (the public file lists every key for every id); they are
    dropped. Raises ``KeyError`` for an unknown id.
    """
    if instruction_id not in CHECKERS:
        raise KeyError(f"instruction_id_list: unknown IFEval instruction {instruction_id!r}")
    if instruction_id in unsupported_ids() or not response.strip():
        return False
    clean = {k: v for k, v in (kwargs or {}).items() if v is not None}
    return CHECKERS[instruction_id](response, clean)


def loose_variants(response: str) -> list[str]:
    """The response, without its first line, its last line, or both; each also with '*' removed."""
    lines = response.split("\n")
    bases = [response, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return bases + [b.replace("*", "") for b in bases]


def score_ifeval(
    instruction_ids: list[str], kwargs_list: list[Kwargs], response: str
) -> tuple[list[bool], list[bool]]:
    """Per-instruction (strict, loose) results for one response."""
    strict = [check_instruction(i, k, response) for i, k in zip(instruction_ids, kwargs_list)]
    variants = [v for v in loose_variants(response) if v.strip()]
    loose = [any(check_instruction(i, k, v) for v in variants) for i, k in zip(instruction_ids, kwargs_list)]
    return strict, loose
