"""The release's four trajectory layouts (tabom.trajectories.release): the pair each layout gives,
derived ids, methods of any value, conversion for training with a model's tokenizer, bad lines.

The layouts and their order are the facts listed in ../shared/reference/README.md (the release's
`load_local_jsonl_items`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tabom.models import load
from tabom.trajectories.release import (
    content_id,
    is_release_line,
    parse_release,
    release_trajectory,
)
from tabom.trajectories.schema import Trajectory, TrajectoryError

ORDER = [1, 0, 2]
LINES = {
    "prompt": {"prompt": "2+3=?", "response": "5", "decoding_order": ORDER, "method": "entropy", "data_source": "math"},
    "prompt_output": {"prompt": "2+3=?", "output": "5", "method": "default"},
    "instruction": {"instruction": "2+3=?", "output": "5", "method": "credit", "data_source": "code"},
    "instruction_response": {"instruction": "2+3=?", "response": "5"},
    "messages": {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+3=?"},
                              {"role": "assistant", "content": "5"}, {"role": "user", "content": "later"}],
                 "method": "entropy"},
    "question_gen_text": {"question": "2+3=?", "gen_text": "5", "answer": "reference 5", "method": "credit"},
    "question_answer": {"question": "2+3=?", "answer": "5"},
    "question_output": {"question": "2+3=?", "output": "5"},
}


@pytest.mark.parametrize("name", sorted(LINES))
def test_each_layout_gives_the_release_pair(name: str) -> None:
    rec = parse_release(LINES[name], "f.jsonl", 1)
    assert (rec.prompt, rec.response) == ("2+3=?", "5")
    assert rec.method == LINES[name].get("method", "unknown")
    assert rec.id.startswith("rel-") and rec.id == content_id(LINES[name])
    assert is_release_line(LINES[name])


def test_first_layout_wins_and_ids_follow_content() -> None:
    both = {"prompt": "P", "response": "R", "question": "Q", "gen_text": "G"}
    rec = parse_release(both)
    assert (rec.layout, rec.prompt, rec.response) == ("prompt", "P", "R")
    assert parse_release(dict(both)).id == rec.id  # same content, same id
    assert parse_release({**both, "response": "R2"}).id != rec.id
    assert parse_release({**both, "method": "credit"}).id != rec.id
    derived = " ".join(rec.derived())
    assert "id" in derived and "prompt_token_ids" in derived and "correct: null" in derived and "decoding_order" in derived


def test_a_tabom_line_is_read_by_the_release_rule(make_traj: Callable[..., Trajectory]) -> None:
    """A tabom line carries prompt + response (the release's first layout), the order and method."""
    line = make_traj("a").to_json()
    assert not is_release_line(line)
    rec = parse_release(line)
    assert (rec.layout, rec.prompt, rec.response) == ("prompt", line["prompt"], line["response"])
    assert rec.decoding_order == line["decoding_order"] and rec.method == "entropy"
    assert rec.response_token_ids == line["response_token_ids"]


@pytest.mark.parametrize(
    ("obj", "field", "problem"),
    [
        ({"text": "x"}, "prompt", "no prompt/response pair"),
        ({"prompt": "x"}, "response", "required with 'prompt'"),
        ({"question": 3, "gen_text": "x"}, "question", "expected a string"),
        ({"messages": [{"role": "user", "content": "x"}]}, "messages", "no assistant message"),
        ({"prompt": "x", "response": "y", "decoding_order": [0, "1"]}, "decoding_order", "item 1"),
        ({"prompt": "x", "response": "y", "decoding_order": [0, -2]}, "decoding_order", "item 1 is -2"),
        ({"prompt": "x", "response": "y", "decoding_order": [0, 1], "response_token_ids": [5]}, "decoding_order",
         "has 2 entries but response_token_ids has 1"),
        ({"prompt": "x", "response": "y", "decoding_order": [0, 1], "non_ltr_positions": [2]}, "non_ltr_positions",
         "position 2 is outside [0, 2)"),
        ({"prompt": "x", "response": "y", "method": 1}, "method", "expected a string"),
    ],
)
def test_bad_release_lines_name_file_line_and_field(obj: dict, field: str, problem: str) -> None:
    with pytest.raises(TrajectoryError) as info:
        parse_release(obj, "r.jsonl", 7)
    assert str(info.value).startswith(f"r.jsonl:7: {field}: ") and problem in str(info.value)


def test_release_trajectory_derives_what_training_needs() -> None:
    """With the tiny model: prompt ids from its encoder, response tokenized and EOS-padded, the
    order padded with -1, or left to right when the line has none; a valid tabom Trajectory."""
    model = load("tiny", device="cpu")
    text = "12+3"
    n = len(model.tokenizer.encode(text, add_special_tokens=False))
    order = list(range(n))[::-1]
    obj = {"question": "1+2?", "gen_text": text, "decoding_order": order, "method": "default"}
    traj = release_trajectory(obj, model, 16, "r.jsonl", 2)
    assert traj is not None
    assert traj.prompt_token_ids == model.encode_prompt("1+2?")
    assert traj.response_token_ids[:n] == model.tokenizer.encode(text, add_special_tokens=False)
    assert traj.response_token_ids[n:] == [model.eos_token_id] * (16 - n)
    assert traj.decoding_order == order + [-1] * (16 - n)
    assert traj.correct is None and traj.method == "default" and traj.settings == {"gen_length": 16}
    Trajectory.from_json({**traj.to_json(), "method": "entropy"}, path="x", lineno=1)  # schema-valid otherwise
    ltr = release_trajectory({"prompt": "1+2?", "response": text}, model, 16)
    assert ltr is not None and ltr.decoding_order[:n] == list(range(n))
    given = release_trajectory({"prompt": "p", "response": "r", "response_token_ids": [5, 6, 7],
                                "decoding_order": [2, 0, 1]}, model, 4)
    assert given is not None and given.response_token_ids == [5, 6, 7, model.eos_token_id]
    with pytest.raises(TrajectoryError, match=rf"r.jsonl:3: decoding_order: has {n + 1} entries but the tokenized response has {n} tokens"):
        release_trajectory({**obj, "decoding_order": order + [n]}, model, 16, "r.jsonl", 3)
    with pytest.raises(TrajectoryError, match=r"r.jsonl:4: response: \d+ tokens do not fit data.gen_length=2"):
        release_trajectory(obj, model, 2, "r.jsonl", 4)
    assert release_trajectory(obj, model, 2, drop_long=True) is None
