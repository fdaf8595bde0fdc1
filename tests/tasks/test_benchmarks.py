"""Benchmark files in the public layouts, scored end to end through `evaluate` with known outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tabom.eval.evaluate import evaluate
from tabom.eval.sources import resolve_tasks
from tabom.tasks.benchmarks import (MATH500, extract_boxed, extract_code, load_benchmark, normalize_latex,
                                    read_records)

GSM8K = [{"question": "Tom has 3 apples and buys 4 more. How many apples?", "answer": "3 + 4 = 7\n#### 7"},
         {"question": "A box holds 1,200 pens; 200 are sold. How many are left?", "answer": "1200-200=1000\n#### 1,000"}]
MATH = [{"problem": "Compute 1/2 + 1/4.", "solution": "It is $\\boxed{\\frac{3}{4}}$.", "answer": "\\frac{3}{4}",
         "unique_id": "test/a.json"},
        {"problem": "What is 6 * 7?", "solution": "$\\boxed{42}$", "answer": "42", "unique_id": "test/b.json"}]
HUMANEVAL = [{"task_id": "HumanEval/0", "prompt": 'def add(a, b):\n    """Return a + b."""\n',
              "canonical_solution": "    return a + b\n",
              "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n",
              "entry_point": "add"},
             {"task_id": "HumanEval/1", "prompt": 'def neg(x):\n    """Return -x."""\n',
              "canonical_solution": "    return -x\n", "test": "def check(candidate):\n    assert candidate(2) == -2\n",
              "entry_point": "neg"}]
MBPP = [{"task_id": 2, "text": "Write a function to square a number.", "code": "def square(x):\n    return x * x",
         "test_list": ["assert square(3) == 9", "assert square(0) == 0"], "test_setup_code": "",
         "challenge_test_list": []},
        {"task_id": 3, "text": "Write a function to double a number.", "code": "def double(x):\n    return 2 * x",
         "test_list": ["assert double(4) == 8"], "test_setup_code": "", "challenge_test_list": []}]
IFEVAL = [{"key": 1000, "prompt": "Write two lines about a pond, all lowercase, with no commas.",
           "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
           "kwargs": [{}, {"num_words": None}]},
          {"key": 1001, "prompt": "Answer in at least 5 words.", "instruction_id_list": ["length_constraints:number_words"],
           "kwargs": [{"num_words": 5, "relation": "at least"}]}]

RIGHT = {"gsm8k": [r["answer"] for r in GSM8K], "math500": [r["solution"] for r in MATH],
         "humaneval": [r["canonical_solution"] for r in HUMANEVAL], "mbpp": [r["code"] for r in MBPP],
         "ifeval": ["quiet pond\nfrogs jump in", "this answer has six words"]}
WRONG = {"gsm8k": ["#### 8", "so 999"], "math500": ["$\\boxed{\\frac{1}{4}}$", "no box, 42"],
         "humaneval": ["    return a - b\n", "    return x\n"], "mbpp": ["def square(x):\n    return x", "oops("],
         "ifeval": ["Quiet, pond", "too short"]}
DATA = {"gsm8k": GSM8K, "math500": MATH, "humaneval": HUMANEVAL, "mbpp": MBPP, "ifeval": IFEVAL}


class NoModel:
    name = "stand-in"
    default_strategy = "entropy"
    default_gen_length = 64


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def fixed(outputs: list[str]) -> Any:
    """A stand-in decoder returning `outputs` in order (each benchmark has 2 items, one batch)."""
    def decode(model: Any, prompts: list[str], settings: Any, gen: Any) -> tuple[list[str], list[int]]:
        assert len(prompts) == len(outputs)
        return list(outputs), [3] * len(prompts)
    return decode


@pytest.mark.parametrize("name", list(DATA))
def test_right_outputs_score_100_wrong_score_0(name: str, tmp_path: Path) -> None:
    spec = f"{name}={write_jsonl(tmp_path / f'{name}.jsonl', DATA[name])}"
    sources = resolve_tasks(spec, timeout_s=5.0, memory_mb=256)
    good = evaluate(NoModel(), sources, progress=False, decode_fn=fixed(RIGHT[name]), limit=None)
    bad = evaluate(NoModel(), sources, progress=False, decode_fn=fixed(WRONG[name]), limit=None)
    assert good.metrics()[name]["accuracy"] == 1.0 and good.metrics()[name]["n"] == 2
    assert bad.metrics()[name]["accuracy"] == 0.0
    assert [s.decode_steps for s in good.samples] == [3, 3]
    assert good.methods[name]


def test_gsm8k_extracted_and_answer() -> None:
    """The gold of '#### 1,000' is '1,000'; the output's last number 1000 matches it numerically."""
    bench = load_benchmark("gsm8k=unused.jsonl")
    from tabom.tasks.benchmarks import BenchItem

    verdict = bench.score([BenchItem("x", "p", "1,000")], ["200 sold, so 1000 left."])[0]
    assert verdict.correct and verdict.extracted == "1000"


def test_ifeval_loose_and_instruction_level(tmp_path: Path) -> None:
    """'**Sure**' on a first line breaks lowercase strictly; loose drops the first line and passes.

    Item 1: 2 instructions, strict [no_comma ok, lowercase fails], loose [ok, ok].
    Item 2: '1 2 3 4' has 4 words < 5: fails both ways.
    prompt strict 0/2, prompt loose 1/2; instruction strict 1/3, loose 2/3.
    """
    spec = f"ifeval={write_jsonl(tmp_path / 'ifeval.jsonl', IFEVAL)}"
    report = evaluate(NoModel(), spec, progress=False, decode_fn=fixed(["**Sure**\nquiet pond", "1 2 3 4"]))
    m = report.metrics()["ifeval"]
    assert m["accuracy"] == 0.0 and m["loose"] == 0.5
    assert m["inst_strict"] == pytest.approx(1 / 3) and m["inst_loose"] == pytest.approx(2 / 3)


def test_math500_equivalence_and_method() -> None:
    bench = MATH500("unused.jsonl")
    assert bench.equivalent("\\dfrac{3}{4}", "\\frac{3}{4}")  # by normalization alone
    assert not bench.equivalent("\\frac{1}{4}", "\\frac{3}{4}")
    if bench.use_math_verify:
        assert "math_verify" in bench.method
        assert bench.equivalent("0.75", "\\frac{3}{4}")
    else:
        assert "normalized string" in bench.method


def test_extractors() -> None:
    assert extract_boxed("a \\boxed{\\frac{1}{2}} then \\boxed{x^{2}}") == "x^{2}"
    assert extract_boxed("no box") is None
    assert extract_boxed("\\boxed 5$") == "5"
    assert normalize_latex("$ 14.0 $") == "14"
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1\n"
    assert extract_code("plain code") == "plain code"


def test_parquet_and_bad_records_named(tmp_path: Path) -> None:
    """Parquet rows read like JSONL; a missing field names file, line and field."""
    import pandas as pd

    pq = tmp_path / "mbpp.parquet"
    pd.DataFrame(MBPP).to_parquet(pq)
    items = load_benchmark(f"mbpp={pq}").items()
    assert [i.id for i in items] == ["2", "3"] and items[0].meta["tests"] == MBPP[0]["test_list"]
    bad = write_jsonl(tmp_path / "g.jsonl", [GSM8K[0], {"question": "q"}])
    with pytest.raises(ValueError, match=r"g\.jsonl:2: answer: missing field"):
        load_benchmark(f"gsm8k={bad}").items()
    nohash = write_jsonl(tmp_path / "h.jsonl", [{"question": "q", "answer": "7"}])
    with pytest.raises(ValueError, match=r"h\.jsonl:1: answer: no '#### n'"):
        load_benchmark(f"gsm8k={nohash}").items()
    (tmp_path / "broken.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: invalid JSON"):
        read_records(tmp_path / "broken.jsonl")
    with pytest.raises(FileNotFoundError):
        load_benchmark(f"mbpp={tmp_path / 'missing.jsonl'}").items()


def test_humaneval_full_function_in_a_fence_replaces_the_stub(tmp_path: Path) -> None:
    """A chat-style answer (prose + fenced full function) passes; the same with a bug fails."""
    bench = load_benchmark(f"humaneval={write_jsonl(tmp_path / 'h.jsonl', HUMANEVAL[:1])}", timeout_s=5.0)
    item = bench.items()[0]
    good = "Sure:\n```python\ndef add(a, b):\n    return a + b\n```\nThis adds."
    bad = good.replace("a + b", "a * b")
    assert [s.correct for s in bench.score([item, item], [good, bad])] == [True, False]
