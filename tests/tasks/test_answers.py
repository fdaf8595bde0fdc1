"""Answer extraction: markers, GSM8K-style last number, normalization."""

from tabom.tasks.answers import (
    extract_answer_number,
    extract_answer_text,
    extract_final_number,
    extract_marked_answer,
    normalize_number,
    numbers_equal,
)


def test_extract_final_number_takes_the_last_number_and_strips_commas_and_dollars() -> None:
    assert extract_final_number("3+4=7\n7*2=14\n#### 14") == "14"
    assert extract_final_number("She pays $1,250 in total.") == "1250"
    assert extract_final_number("x = -3") == "-3"
    assert extract_final_number("0.5 of 12 is 6.") == "6"
    assert extract_final_number("no digits here") is None


def test_minus_glued_to_a_number_on_its_left_is_an_operator() -> None:
    """'12-3' is 12 minus 3, not 12 and -3; the numbers found are 12 and 3."""
    assert extract_final_number("12-3") == "3"
    assert extract_final_number("so the result is -3") == "-3"


def test_list_commas_are_not_thousands_separators() -> None:
    """'3,4,5' are three numbers (groups after a comma must have 3 digits)."""
    assert extract_final_number("3,4,5") == "5"


def test_normalize_number() -> None:
    assert normalize_number(" $1,200.50 ") == "1200.5"
    assert normalize_number("14.0") == "14"
    assert normalize_number("+3") == "3"
    assert normalize_number("-0") == "0"
    assert normalize_number("7.") == "7"
    assert normalize_number("seven") is None
    assert normalize_number("3 4") is None


def test_marked_answer_prefers_the_last_marker() -> None:
    assert extract_marked_answer("#### 3\nwait\n#### 5") == "5"
    assert extract_marked_answer("So it is 9. The answer is 12.") == "12"
    assert extract_marked_answer("Answer: tenalp") == "tenalp"
    assert extract_marked_answer("nothing marked") is None


def test_extract_answer_number_uses_the_marker_before_the_last_number() -> None:
    """After '####' the first number counts even if more numbers follow on later lines."""
    assert extract_answer_number("#### 14\n99") == "14"
    assert extract_answer_number("We get 12 then 9. The answer is 9.") == "9"
    assert extract_answer_number("12 and then 30") == "30"
    assert extract_answer_number("#### none") is None


def test_numbers_equal() -> None:
    assert numbers_equal("14.0", "14")
    assert not numbers_equal("15", "14")
    assert not numbers_equal(None, "14")


def test_extract_answer_text_falls_back_to_the_last_line() -> None:
    assert extract_answer_text("Sure, here it is:\nSUN-SUN\n") == "SUN-SUN"
    assert extract_answer_text("The answer is 'abc'.") == "abc"
    assert extract_answer_text("t e n\n#### ten") == "ten"
    assert extract_answer_text("") == ""
