"""The paper's training sets as published (tabom.tasks.published) and `tabom data prepare`.

Fixtures are tiny tables with the published columns: MixChain-Z-PRM12K (question, answer, target,
solution_0..4, correct_1..4, solution_k_token, __index_level_0__) and Ling-Coder-SFT (mid,
messages with HUMAN / ASSISTANT roles), written as parquet, JSONL, a parquet folder and
`datasets` save folders; the five benchmarks' fixtures of test_benchmarks.py as save folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tabom.tasks.published import prompt_objects, read_table, sft_objects

PRM = [
    {"question": f"What is {i} + {i}?", "answer": f"Add them: {i} + {i} = {2 * i}.", "target": str(2 * i),
     **{f"solution_{k}": f"s{k}" for k in range(5)}, **{f"correct_{k}": k % 2 == 0 for k in range(1, 5)},
     **{f"solution_{k}_token": 10 * k for k in range(1, 5)}, "__index_level_0__": 100 + i}
    for i in range(3)
]
LING = [
    {"mid": f"m{i}", "messages": [{"role": "HUMAN", "content": f"Write f{i}."},
                                  {"role": "ASSISTANT", "content": f"def f{i}(): return {i}"}]}
    for i in range(2)
]


def write(kind: str, rows: list[dict[str, Any]], where: Path) -> Path:
    """rows as `kind`: parquet, jsonl, parquet_folder, saved (Dataset) or saved_dict (DatasetDict)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "jsonl":
        where.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), where)
    elif kind == "parquet_folder":
        (where / "data").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows[:1]), where / "data" / "train-00000-of-00002.parquet")
        pq.write_table(pa.Table.from_pylist(rows[1:]), where / "data" / "train-00001-of-00002.parquet")
    elif kind == "saved":
        datasets.Dataset.from_list(rows).save_to_disk(str(where))
    else:
        datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(where))
    return where


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "parquet_folder", "saved", "saved_dict"])
def test_every_local_form_gives_the_same_prompts_and_pairs(tmp_path: Path, kind: str) -> None:
    path = write(kind, PRM, tmp_path / f"prm.{kind}")
    prompts = list(prompt_objects(path))
    assert prompts == [{"id": f"prm12k-{100 + i}", "prompt": f"What is {i} + {i}?", "answer": str(2 * i),
                        "data_source": "prm12k"} for i in range(3)]
    assert [p["answer"] for p in sft_objects(path)] == [r["answer"] for r in PRM]  # the original solution
    ling = write(kind, LING, tmp_path / f"ling.{kind}")
    assert list(prompt_objects(ling)) == [{"id": "ling-m0", "prompt": "Write f0.", "data_source": "ling_coder"},
                                          {"id": "ling-m1", "prompt": "Write f1.", "data_source": "ling_coder"}]
    assert [p["answer"] for p in sft_objects(ling)] == ["def f0(): return 0", "def f1(): return 1"]


@pytest.mark.parametrize(("name", "rows"), [("prm12k", PRM), ("ling_coder", LING)])
def test_data_prepare_writes_prompts_and_sft_pairs(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> None:
    from tabom.cli import app

    src = write("parquet", rows, tmp_path / f"{name}.parquet")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["data", "prepare", name, str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    prompts = [json.loads(line) for line in (out / "prompts.jsonl").read_text().splitlines()]
    pairs = [json.loads(line) for line in (out / "sft_gt.jsonl").read_text().splitlines()]
    assert len(prompts) == len(pairs) == len(rows) and f"wrote {len(rows)} prompts" in res.output
    assert [p["id"] for p in prompts] == [p["id"] for p in pairs]
    from tabom.trajectories.prompts import read_prompts

    assert [r.prompt for r in read_prompts(out / "prompts.jsonl")] == [r.prompt for r in read_prompts(src)]
    again = CliRunner().invoke(app, ["data", "prepare", name, str(src), "--out", str(out)])
    assert again.exit_code != 0 and "exists (pass --overwrite" in str(again.exception)


def test_missing_column_is_one_error_and_nothing_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    src = write("parquet", [{k: v for k, v in r.items() if k != "target"} for r in PRM], tmp_path / "p.parquet")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", "from tabom.cli import main; main()", "data", "prepare", "prm12k",
                          str(src), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {src}: column 'target' missing (horseee/MixChain-Z-PRM12K as published has question, answer, target; "
        "found __index_level_0__, answer, correct_1, correct_2, correct_3, correct_4, question, solution_0)"]
    assert not out.exists()
    bad = write("jsonl", [PRM[0], {**PRM[1], "question": ""}], tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: question: expected a non-empty string"):
        list(prompt_objects(bad))


def test_generate_prompts_and_sft_gt_training_read_the_published_file(tmp_path: Path) -> None:
    """`tabom generate --prompts` reads the published parquet (references kept for --keep correct);
    `format: prompts` training takes each row's published solution as the response."""
    from tabom.config import DataConfig
    from tabom.models import load
    from tabom.trajectories.prompts import read_prompts
    from tabom.training.data import answer_ids, load_rows

    src = write("saved_dict", PRM, tmp_path / "prm")
    records = read_prompts(src)
    assert [(r.id, r.answer) for r in records] == [("prm12k-100", "0"), ("prm12k-101", "2"), ("prm12k-102", "4")]
    model = load("tiny", device="cpu")
    rows = load_rows(DataConfig(path=str(src), format="prompts", gen_length=32), model)
    assert [r.response for r in rows] == [tuple(answer_ids(model, r["answer"], 32)) for r in PRM]
    assert rows[0].prompt == tuple(model.encode_prompt(PRM[0]["question"]))


def test_benchmarks_read_a_datasets_save_folder(tmp_path: Path) -> None:
    """Each of the five benchmarks reads a `save_to_disk` DatasetDict (its test split) as it reads
    the JSONL file of the same records."""
    import datasets
    from test_benchmarks import DATA, write_jsonl

    from tabom.tasks.benchmarks import load_benchmark

    for name, rows in DATA.items():
        folder = tmp_path / name
        other = [dict(rows[0])]  # a decoy train split: the test split must be the one read
        datasets.DatasetDict({"train": datasets.Dataset.from_list(other),
                              "test": datasets.Dataset.from_list(rows)}).save_to_disk(str(folder))
        from_folder = load_benchmark(f"{name}={folder}").items()
        from_jsonl = load_benchmark(f"{name}={write_jsonl(tmp_path / f'{name}.jsonl', rows)}").items()
        assert [(i.id, i.prompt, i.answer) for i in from_folder] == [(i.id, i.prompt, i.answer) for i in from_jsonl], name
    assert len(list(read_table(tmp_path / "gsm8k", split="train"))) == 1


def test_generate_decodes_a_published_parquet(tmp_path: Path) -> None:
    """`tabom generate --prompts FILE.parquet` with the tiny model: one trajectory per row, with the
    row's id, prompt and data source, verified against `target` (`correct` true or false)."""
    from tabom.cli import app

    src = write("parquet", PRM, tmp_path / "prm.parquet")
    out = tmp_path / "t.jsonl"
    res = CliRunner().invoke(app, ["generate", "--model", "tiny", "--prompts", str(src), "--out", str(out),
                                   "--gen-length", "8", "--steps", "8", "--keep", "all", "--no-progress"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["prompt"], r["data_source"]) for r in rows] == [
        (f"prm12k-{100 + i}", f"What is {i} + {i}?", "prm12k") for i in range(3)]
    assert all(isinstance(r["correct"], bool) for r in rows) and [r["answer"] for r in rows] == ["0", "2", "4"]
