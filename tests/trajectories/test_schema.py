"""Trajectory JSON round-trip, release aliases, and every validation message."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tabom.trajectories.schema import Trajectory, TrajectoryError, response_token_count


def _error(obj: Any) -> str:
    with pytest.raises(TrajectoryError) as info:
        Trajectory.from_json(obj, path="f.jsonl", lineno=7)
    return str(info.value)


def test_round_trip_keeps_every_field(make_traj: Callable[..., Trajectory]) -> None:
    traj = make_traj(answer="2", non_ltr_positions=[0], extra={"note": "x"})
    line = traj.to_line()
    assert "\n" not in line
    back = Trajectory.from_json(json.loads(line), path="f", lineno=1)
    assert back == traj
    assert back.gen_length == 4


def test_written_names_are_the_release_names(make_traj: Callable[..., Trajectory]) -> None:
    obj = make_traj().to_json()
    assert {"prompt", "response", "response_token_ids", "decoding_order", "method"} <= set(obj)
    assert "question" not in obj and "gen_text" not in obj
    assert "answer" not in obj and "non_ltr_positions" not in obj  # optional, absent when None


def test_aliases_question_and_gen_text(traj_obj: dict[str, Any]) -> None:
    obj = dict(traj_obj)
    obj["question"] = obj.pop("prompt")
    obj["gen_text"] = obj.pop("response")
    traj = Trajectory.from_json(obj, path="f", lineno=1)
    assert traj.prompt == "What is 1+1?" and traj.response == "ab"
    assert traj.extra == {}  # aliases are consumed, not kept as unknown fields
    assert "question" not in traj.to_json()


def test_tabom_name_wins_over_alias(traj_obj: dict[str, Any]) -> None:
    obj = dict(traj_obj, question="other")
    assert Trajectory.from_json(obj, path="f", lineno=1).prompt == "What is 1+1?"


def test_non_ascii_text_kept(make_traj: Callable[..., Trajectory]) -> None:
    traj = make_traj(response="π ≈ 3.14")
    assert "π" in traj.to_line()
    assert Trajectory.from_json(json.loads(traj.to_line())).response == "π ≈ 3.14"


def _set(**kv: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o.update(kv)


def _set_setting(**kv: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o["settings"].update(kv)


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda o: o.pop(key)


ONE_PER_STEP = "but the settings decode one token per step"
CASES: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (_drop("decoding_order"), "decoding_order: required field is missing"),
    (_drop("prompt"), "prompt: required field is missing (or its alias 'question')"),
    (_set(id=3), "id: expected a string, got int"),
    (_set(id=""), "id: must not be empty"),
    (_set(response=None), "response: expected a string, got null"),
    (_set(method="greedy"),
     "method: 'greedy' is not one of entropy, confidence, margin, random"),
    (_set(correct="yes"), "correct: expected true, false or null, got str"),
    (_set(answer=5), "answer: expected a string or null, got int"),
    (_set(prompt_token_ids="1 2"), "prompt_token_ids: expected a list of ints, got str"),
    (_set(response_token_ids=[5, 6.0, 2, 2]),
     "response_token_ids: item 1 is float 6.0, expected an int"),
    (_set(decoding_order=[1, True, 2, 3]), "decoding_order: item 1 is bool True, expected an int"),
    (_set(response_token_ids=[], decoding_order=[]), "response_token_ids: must not be empty"),
    (_set(settings=[]), "settings: expected an object, got list"),
    (_set_setting(steps="4"), "settings.steps: expected int, got str"),
    (_set_setting(steps=0), "settings.steps: must be >= 1, got 0"),
    (_set_setting(top_p="x"), "settings.top_p: expected int or float or null, got str"),
    (_set(decoding_order=[0, 1, 2]),
     "decoding_order: has 3 entries but response_token_ids has 4"),
    (_set_setting(gen_length=8),
     "settings.gen_length: is 8 but response_token_ids has 4 entries"),
    (_set(decoding_order=[0, 1, 2, 4]),
     "decoding_order: position 3 has step 4, expected -1 or in [0, 4)"),
    (_set(decoding_order=[0, -2, 1, 2]),
     "decoding_order: position 1 has step -2, expected -1 or in [0, 4)"),
    (_set(decoding_order=[0, 2, 0, 1]),
     f"decoding_order: step 0 unmasks positions 0 and 2, {ONE_PER_STEP}"),
    (_set(non_ltr_positions=[4]), "non_ltr_positions: position 4 is outside [0, 4)"),
]


@pytest.mark.parametrize(("change", "message"), CASES)
def test_each_validation_error(
    traj_obj: dict[str, Any], change: Callable[[dict[str, Any]], None], message: str
) -> None:
    obj = json.loads(json.dumps(traj_obj))  # deep copy
    change(obj)
    assert _error(obj) == f"f.jsonl:7: {message}"


def test_not_an_object() -> None:
    assert _error([1, 2]) == "f.jsonl:7: json: expected a JSON object, got list"


def test_error_is_value_error_with_parts(traj_obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        Trajectory.from_json(dict(traj_obj, method="x"), path="a.jsonl", lineno=3)
    err = info.value
    assert isinstance(err, TrajectoryError)
    assert (err.path, err.lineno, err.field) == ("a.jsonl", 3, "method")


def test_repeated_steps_allowed_when_several_tokens_per_step(traj_obj: dict[str, Any]) -> None:
    """steps=2 for 4 tokens: 2 tokens per step, so [0, 0, 1, 1] is fine."""
    obj = json.loads(json.dumps(traj_obj))
    obj["settings"]["steps"] = 2
    obj["decoding_order"] = [0, 0, 1, 1]
    assert Trajectory.from_json(obj).decoding_order == [0, 0, 1, 1]


def test_repeated_steps_allowed_with_blocks(traj_obj: dict[str, Any]) -> None:
    """Blocks of 2 with steps == gen_length: no one-per-step rule is inferred."""
    obj = json.loads(json.dumps(traj_obj))
    obj["settings"]["block_length"] = 2
    obj["decoding_order"] = [0, 0, 1, 2]
    assert Trajectory.from_json(obj).decoding_order == [0, 0, 1, 2]


def test_tokens_per_step_one_forbids_repeats_even_with_blocks(traj_obj: dict[str, Any]) -> None:
    obj = json.loads(json.dumps(traj_obj))
    obj["settings"].update(block_length=2, tokens_per_step=1)
    obj["decoding_order"] = [0, 1, 1, 2]
    assert "step 1 unmasks positions 1 and 2" in _error(obj)


def test_never_decoded_and_no_steps_setting(traj_obj: dict[str, Any]) -> None:
    """Without settings.steps any step >= 0 is in range; -1 marks a never-decoded position."""
    obj = json.loads(json.dumps(traj_obj))
    obj["settings"] = {}
    obj["decoding_order"] = [0, 99, -1, 99]
    assert Trajectory.from_json(obj).decoding_order == [0, 99, -1, 99]


def test_response_token_count(make_traj: Callable[..., Trajectory]) -> None:
    """[5, 6, 2, 2]: EOS id 2 (the padding) first at index 2 -> 2 tokens, with or without the id."""
    assert response_token_count(make_traj()) == 2
    with_eos = make_traj(settings={"eos_token_id": 6})
    assert response_token_count(with_eos) == 1  # first 6 is at index 1
    full = make_traj(response_token_ids=[5, 6, 7, 8])
    assert response_token_count(full) == 3  # no padding: the heuristic counts one short


def test_doc_example_line_is_valid() -> None:
    """The example in docs/trajectory_format.md parses and has 16 positions, steps 0..15 once."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "trajectory_format.md"
    block = doc.read_text().split("```json\n", 1)[1].split("```", 1)[0].strip()
    traj = Trajectory.from_json(json.loads(block), path=str(doc), lineno=1)
    assert traj.gen_length == 16 and sorted(traj.decoding_order) == list(range(16))
    assert response_token_count(traj) == 14  # EOS 151643 first at index 14


def test_trajectory_modules_do_not_import_torch() -> None:
    code = (
        "import sys, tabom.trajectories, tabom.trajectories.inspect, tabom.commands.data; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
