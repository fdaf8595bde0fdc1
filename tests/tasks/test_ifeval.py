"""IFEval instruction checkers, each with an output that follows it and one that does not."""

from __future__ import annotations

import pytest

from tabom.tasks.ifeval import CHECKERS, check_instruction, count_sentences, loose_variants, score_ifeval, unsupported_ids

# (instruction id, kwargs, a following response, a breaking response)
CASES = [
    ("punctuation:no_comma", {}, "no commas at all", "one, two"),
    ("change_case:english_lowercase", {}, "all small here", "Not small"),
    ("change_case:english_capital", {}, "ALL BIG HERE", "ALL BIG hERE"),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "THE BIG dog", "The BIG dog"),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "The BIG dog", "THE BIG dog"),
    ("startend:quotation", {}, '"quoted answer"', 'quoted answer"'),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done. Any other questions?",
     "Any other questions? Done."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\nP.S. bye", "Hi.\nPS bye"),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP.P.S bye", "Hi.\nP.S. bye"),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "At [address] on [date]", "At [address]"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", "* one\n* two\n- three"),
    ("detectable_format:constrained_response", {}, "My answer is yes.", "Yes."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*a* and **b**", "*a* and b"),
    ("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 2},
     "SECTION 1\nx\nSECTION 2\ny", "SECTION 1\nx"),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "{a: 1}"),
    ("detectable_format:title", {}, "<<My Title>>\ntext", "My Title\ntext"),
    ("combination:two_responses", {}, "first******second", "first******first"),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "Say hi. Hi!", "Hi! Say hi."),
    ("keywords:existence", {"keywords": ["apple", "pear"]}, "An Apple and a pear", "An apple"),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "at least"}, "cat CAT", "cat"),
    ("keywords:forbidden_words", {"forbidden_words": ["bad"]}, "badge is fine", "this is bad"),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"}, "one z", "zz"),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"}, "One. Two!", "A. B. C."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "one\n***\ntwo", "one\n***\n***\ntwo"),
    ("length_constraints:number_words", {"num_words": 3, "relation": "at least"}, "one two three", "one two"),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then", "num_words": None},
     "First part.\n\nThen, more.", "First part.\n\nNext, more."),
]


@pytest.mark.parametrize(("instruction", "kwargs", "good", "bad"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_checker_follows_and_breaks(instruction: str, kwargs: dict, good: str, bad: str) -> None:
    assert check_instruction(instruction, kwargs, good)
    assert not check_instruction(instruction, kwargs, bad)


def test_every_id_but_language_has_a_case() -> None:
    """All 25 English IFEval ids are registered; all but response_language are exercised above."""
    assert len(CHECKERS) == 25
    assert {c[0] for c in CASES} == set(CHECKERS) - {"language:response_language"}


def test_language_is_unsupported_without_langdetect() -> None:
    if unsupported_ids():
        assert not check_instruction("language:response_language", {"language": "en"}, "Hello there, friend.")
    else:
        assert check_instruction("language:response_language", {"language": "en"}, "Hello there, my good friend.")


def test_unknown_id_and_empty_response() -> None:
    with pytest.raises(KeyError, match="unknown IFEval instruction"):
        check_instruction("keywords:nope", {}, "x")
    assert not check_instruction("punctuation:no_comma", {}, "   ")


def test_loose_variants_and_scores() -> None:
    """'Sure!\\nfine text\\nThanks' -> 8 variants; dropping both outer lines leaves 'fine text'."""
    variants = loose_variants("Sure!\n*fine* text\nThanks")
    assert len(variants) == 8 and "fine text" in variants
    strict, loose = score_ifeval(["change_case:english_lowercase"], [{}], "Sure!\n*fine* text\nThanks")
    assert strict == [False] and loose == [True]


def test_count_sentences() -> None:
    assert count_sentences("One. Two? Three!") == 3
    assert count_sentences("No end mark") == 1
    assert count_sentences("") == 0
