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
    with pytest.raises(TrajectoryError, match=rf"r.jsonl:5: response_token_ids: id {model.vocab_size} is outside the model's vocabulary"):
        release_trajectory({"prompt": "p", "response": "r", "response_token_ids": [5, model.vocab_size]}, model, 4, "r.jsonl", 5)


def _release_file(path, n: int = 8):
    """n lines cycling through the four layouts and the methods entropy, default, credit."""
    import json

    layouts = [
        lambda p, r: {"prompt": p, "response": r},
        lambda p, r: {"instruction": p, "output": r},
        lambda p, r: {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}]},
        lambda p, r: {"question": p, "gen_text": r},
    ]
    methods = ["entropy", "default", "credit"]
    with open(path, "w") as f:
        for i in range(n):
            word = "abcdef"[i % 6] * (2 + i % 3)
            line = layouts[i % 4](f"reverse {word}", word[::-1])
            line["method"] = methods[i % 3]
            line["data_source"] = "math" if i % 2 else "code"
            f.write(json.dumps(line) + "\n")
    return path


def test_release_file_gives_training_rows_with_the_method_filter(tmp_path) -> None:
    from tabom.config import DataConfig
    from tabom.training.data import load_rows

    path = _release_file(tmp_path / "release.jsonl")
    model = load("tiny", device="cpu")
    rows = load_rows(DataConfig(path=str(path), gen_length=16), model)
    assert len(rows) == 8 and all(len(r.response) == 16 and len(r.steps) == 16 for r in rows)
    assert rows[0].prompt == tuple(model.encode_prompt("reverse aa"))
    entropy = load_rows(DataConfig(path=str(path), gen_length=16, methods=["entropy"]), model)
    assert len(entropy) == 3  # lines 0, 3, 6
    with open(path, "a") as f:
        f.write('{"prompt": "x", "response": "yz", "decoding_order": [0, 1, 2]}\n')
    with pytest.raises(TrajectoryError, match=r"release.jsonl:9: decoding_order: has 3 entries but the tokenized response has 2"):
        load_rows(DataConfig(path=str(path), gen_length=16), model)


def test_tabom_data_inspect_and_train_accept_release_files(tmp_path) -> None:
    """`tabom data inspect` passes the four layouts with methods default/credit/entropy and lists
    what it derived; `tabom train` trains on them (the LLaDA-layout fixture, so the adapter it
    saves is keyed on LLaDA's module names)."""
    import sys
    from pathlib import Path

    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from tabom.cli import app

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from checkpoint_builders import build_llada_checkpoint

    path = _release_file(tmp_path / "release.jsonl")
    res = CliRunner().invoke(app, ["data", "inspect", str(path)])
    assert res.exit_code == 0, res.output
    assert "all lines valid" in res.output and "credit x2, default x3, entropy x3" in res.output
    assert "id (SHA-256 of the line): 8 line(s)" in res.output and "correct: null: 8 line(s)" in res.output
    llada = build_llada_checkpoint(tmp_path / "llada")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, [
        "train", "--recipe", "tiny_tabom", f"model={llada}", f"data.path={path}", "data.gen_length=8",
        "data.methods=[entropy,default,credit]", "objective.ce_window=4", "objective.rank_window=4",
        "max_steps=2", "batch_size=2", "log_every=1", f"out={out}", "paper_global_batch=8",
    ])
    assert res.exit_code == 0, res.output
    printed = " ".join(res.output.split())  # the console wraps long lines
    assert "effective global batch: 1 process(es) x 2 rows x 1 accumulation = 2" in printed
    assert "warning: the recipe declares the paper's global batch 8, this run's is 2; grad_accum=4 gives 8" in printed
    keys = load_file(str(out / "final" / "adapter_model.safetensors"))
    assert keys and all(".model.transformer.blocks." in k for k in keys)
