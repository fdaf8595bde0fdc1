"""Training rows, per-rank batching and collation; bad rows name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tabom.config import DataConfig
from tabom.models.tiny import build_tiny
from tabom.training.data import Row, collate, epoch_order, load_rows, rank_batches

from train_helpers import GEN, SHAPE


@pytest.fixture(scope="module")
def model():
    return build_tiny(seed=0, **SHAPE)


def test_collate_left_pads_prompts() -> None:
    """Prompts [7, 8, 9] and [5]: the second row gets two pads on the left (PAD=0, MASK=1)."""
    rows = [Row((7, 8, 9), (20, 21), (1, 0)), Row((5,), (30, 2), (0, -1))]
    b = collate(rows, pad_token_id=0, mask_token_id=1)
    assert b.input_ids.tolist() == [[7, 8, 9, 20, 21], [0, 0, 5, 30, 2]]
    assert b.attention_mask.tolist() == [[True] * 5, [False, False, True, True, True]]
    assert b.response_mask.tolist() == [[False, False, False, True, True], [False, False, False, True, True]]
    assert b.steps.tolist() == [[-1, -1, -1, 1, 0], [-1, -1, -1, 0, -1]]
    assert b.steps.dtype == torch.long and b.attention_mask.dtype == torch.bool


def test_rank_batches_split_and_wrap() -> None:
    """5 rows, batch 2, 2 ranks: ceil(5/4) = 2 batches each, the last wrapped to the start."""
    order = [0, 1, 2, 3, 4]
    assert rank_batches(order, 2, 0, 2) == [[0, 1], [4, 0]]
    assert rank_batches(order, 2, 1, 2) == [[2, 3], [1, 2]]
    assert rank_batches(order, 2, 0, 1) == [[0, 1], [2, 3], [4, 0]]


def test_epoch_order_depends_on_seed_and_epoch_only() -> None:
    a, b = epoch_order(10, 0, 0), epoch_order(10, 0, 1)
    assert sorted(a) == list(range(10)) and a != b
    assert epoch_order(10, 0, 0) == a


def test_trajectory_rows(traj_file: Path, model) -> None:
    rows = load_rows(DataConfig(path=str(traj_file), gen_length=GEN), model)
    first = json.loads(traj_file.read_text().splitlines()[0])
    assert len(rows) == 12
    assert list(rows[0].prompt) == first["prompt_token_ids"]
    assert list(rows[0].steps) == first["decoding_order"]


def test_missing_decoding_order_names_file_and_line(traj_file: Path, model) -> None:
    lines = traj_file.read_text().splitlines()
    bad = json.loads(lines[2])
    del bad["decoding_order"]
    lines[2] = json.dumps(bad)
    traj_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{traj_file}:3: decoding_order: required field is missing"):
        load_rows(DataConfig(path=str(traj_file), gen_length=GEN), model)


def test_malformed_decoding_order_names_file_and_line(traj_file: Path, model) -> None:
    lines = traj_file.read_text().splitlines()
    bad = json.loads(lines[4])
    bad["decoding_order"] = bad["decoding_order"][:-1]
    lines[4] = json.dumps(bad)
    traj_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{traj_file}:5: decoding_order: has 15 entries"):
        load_rows(DataConfig(path=str(traj_file), gen_length=GEN), model)


def test_gen_length_mismatch_names_line(traj_file: Path, model) -> None:
    with pytest.raises(ValueError, match=rf"{traj_file}:1: response_token_ids: has 16 tokens but data.gen_length is 32"):
        load_rows(DataConfig(path=str(traj_file), gen_length=32), model)


def test_prompt_rows_are_eos_padded_answers(prompt_file: Path, model) -> None:
    """Answer 'cba' -> its 3 character ids then 5 EOS (id 2) to fill gen_length 8."""
    rows = load_rows(DataConfig(path=str(prompt_file), format="prompts", gen_length=8), model)
    tok = model.tokenizer
    assert list(rows[0].response) == tok.encode("cba", add_special_tokens=False) + [2] * 5
    assert list(rows[0].prompt) == model.encode_prompt("abc")
    assert rows[0].steps == (-1,) * 8


def test_prompt_rows_too_long_and_missing_answer(prompt_file: Path, tmp_path: Path, model) -> None:
    with pytest.raises(ValueError, match=rf"{prompt_file}:1: answer: does not fit data.gen_length=3"):
        load_rows(DataConfig(path=str(prompt_file), format="prompts", gen_length=3), model)
    rows = load_rows(DataConfig(path=str(prompt_file), format="prompts", gen_length=3, drop_long=True), model)
    assert [r.response for r in rows] == [tuple(model.tokenizer.encode("ed", add_special_tokens=False)) + (2,)]
    no_answer = tmp_path / "q.jsonl"
    no_answer.write_text('{"prompt": "x", "answer": "y"}\n\n{"prompt": "z"}\n')
    with pytest.raises(ValueError, match=rf"{no_answer}:3: answer: required for SFT-GT"):
        load_rows(DataConfig(path=str(no_answer), format="prompts", gen_length=8), model)


def test_task_rows_use_reference_answers(model) -> None:
    from tabom.tasks import get_family

    cfg = DataConfig(task="ood_format", n=5, style="reference", gen_length=64)
    rows = load_rows(cfg, model)
    problems = get_family("ood_format").problems("train", 5, 0)
    text = model.tokenizer.decode(list(rows[0].response))
    assert text == problems[0].reference
    assert list(rows[0].prompt) == model.encode_prompt(problems[0].prompt)
