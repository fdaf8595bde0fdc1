"""`tabom reproduce --model DIR --plan PLAN.yaml` on tiny random Dream- and LLaDA-layout checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from checkpoint_builders import build_dream_checkpoint, build_llada_checkpoint  # noqa: E402

PLAN = """seeds: [0]
gen_length: 8
decode_batch: 4
tds_n: 2
eval_gen_length: 8
keep: all
domains:
  math:
    train: train.jsonl
    val: {gsm8k: gsm_val.jsonl}
    test: {gsm8k: gsm_test.jsonl, math500: math_test.jsonl}
ood: {ifeval: ifeval.jsonl}
"""


def _rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_plan(root: Path, plan: str = PLAN) -> Path:
    """Tiny local benchmark files in the public layouts, a training prompt file, and the plan."""
    _rows(root / "train.jsonl", [{"prompt": f"what is {a} + {a} ?", "answer": str(2 * a),
                                  "solution": f"{a} + {a} = {2 * a}. the answer is {2 * a}"} for a in range(4)])
    _rows(root / "gsm_val.jsonl", [{"question": f"what is {a} + 1 ?", "answer": f"#### {a + 1}"} for a in range(2)])
    _rows(root / "gsm_test.jsonl", [{"question": f"what is {a} + 2 ?", "answer": f"#### {a + 2}"} for a in range(3)])
    _rows(root / "math_test.jsonl", [{"problem": f"what is {a} * 2 ?", "answer": str(2 * a),
                                      "solution": f"$\\boxed{{{2 * a}}}$"} for a in range(2)])
    _rows(root / "ifeval.jsonl", [{"key": 1, "prompt": "say hello", "instruction_id_list": ["punctuation:no_comma"],
                                   "kwargs": [{}]}])
    (root / "plan.yaml").write_text(plan)
    return root / "plan.yaml"


def tabom(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tabom.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.parametrize("layout", ["dream", "llada"])
def test_real_grid_end_to_end_and_resume(layout: str, tmp_path: Path) -> None:
    """Trajectories, five trained methods with every epoch validated, test at the chosen epoch under full
    and parallel decoding, TDS, the report with the paper's tables; a rerun runs nothing."""
    build = build_dream_checkpoint if layout == "dream" else build_llada_checkpoint
    build(tmp_path / "ckpt")
    write_plan(tmp_path)
    dry = tabom("reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--dry-run", "--out", "out", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "train math/tabom/seed0 (5 epochs)" in dry.stdout and "GPU-h" in dry.stdout and "total:" in dry.stdout
    assert not (tmp_path / "out").exists()

    one = tabom("reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--out", "out", "--methods", "tabom", cwd=tmp_path)
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    assert "[ran] eval math/tabom/seed0/full_test" in one.stdout and "sft_gt" not in one.stdout
    assert not (tmp_path / "out" / "report.md").exists()  # one method per GPU, the report comes last
    first = tabom("reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--out", "out", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[cached] eval math/tabom/seed0/full_test" in first.stdout and "[ran] train math/sft_gt/seed0" in first.stdout
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["families"]["math"] == {"in": ["gsm8k", "math500"], "ood": ["ifeval"]}
    for decode in ("full", "parallel"):
        rows = results["main"]["math"][decode]
        assert list(rows) == ["No-SFT", "SFT-GT", "SFT-SD", "dInfer", "T3D", "TABOM"]
        assert set(rows["TABOM"]["mean"]) == {"gsm8k", "math500", "in_avg", "ifeval", "ood_avg"}
    assert set(results["tds"]["math"]) == {"No-SFT", "SFT-SD", "TABOM"}
    report = (out / "report.md").read_text()
    assert "Paper, Table 3" in report and "Table 4 analogue" in report
    # every checkpoint of every run was validated; test was run at the chosen one, in the release protocol
    vals = sorted(p.name for p in (out / "eval" / "math" / "tabom" / "seed0").glob("full_val-*.json"))
    assert vals == [f"full_val-epoch_{k}.json" for k in range(1, 6)] + ["full_val-final.json"]
    test = json.loads((out / "eval" / "math" / "tabom" / "seed0" / "parallel_test.json").read_text())
    assert test["settings"]["protocol"] == "release" and test["settings"]["checkpoint"].startswith(("epoch_", "final"))
    assert test["settings"]["per_task"]["gsm8k"]["tokens_per_step"] == 2
    assert "gsm8k_cot" in test["methods"]["gsm8k"]

    again = tabom("reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--out", "out", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[ran]" not in again.stdout and "(0 steps ran" in again.stdout


def test_plan_errors_name_file_line_and_field(tmp_path: Path) -> None:
    """A missing file, a benchmark file with the wrong columns, an unknown field: one error line, exit 2."""
    build_dream_checkpoint(tmp_path / "ckpt")
    cases = [
        (PLAN.replace("gsm_test.jsonl, math500", "missing.jsonl, math500"), "plan.yaml:11: domains.math.test.gsm8k"),
        (PLAN.replace("tds_n: 2", "tds_n: two"), "plan.yaml:4: tds_n: expected a positive int"),
        (PLAN + "epochs: 3\n", "plan.yaml:13: epochs: unknown field"),
    ]
    for plan, message in cases:
        write_plan(tmp_path, plan)
        proc = tabom("reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--out", "out", cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert message in proc.stderr and proc.stderr.count("error:") == 1, proc.stderr
        assert not (tmp_path / "out").exists()
    write_plan(tmp_path)
    _rows(tmp_path / "gsm_test.jsonl", [{"question": "q", "answer": "#### 1"}, {"query": "no question field"}])
    proc = tabom("reproduce", "--model", "ckpt", "--plan", "plan.yaml", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2 and "gsm_test.jsonl:2: question: missing field" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
