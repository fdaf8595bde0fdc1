"""Task files that run the installed lm-eval's gsm8k_cot over a local GSM8K file, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tabom.eval.lm_eval_tasks import write_task_files
from tabom.tasks.release_protocol import gsm8k_prompt


def test_gsm8k_cot_over_a_local_file(tiny_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval's own prompt (0-shot 'Q: ..\\nA:'), stops and both filters, on 3 local records."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import tabom.eval.lm_eval_model  # noqa: F401  (registers "tabom")

    for key, value in (("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_CACHE", str(tmp_path / "hf"))):
        monkeypatch.setenv(key, value)
    data = tmp_path / "gsm.jsonl"
    questions = [f"What is {a} + 1?" for a in range(3)]
    data.write_text("".join(json.dumps({"question": q, "answer": f"#### {a + 1}"}) + "\n" for a, q in enumerate(questions)))
    (path,) = write_task_files(tmp_path / "tasks", {"gsm8k": str(data)})
    assert path.name == "tabom_gsm8k_cot.yaml"
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    out = lm_eval.simple_evaluate(model="tabom", model_args=f"model={tiny_dirs['a']},device=cpu,gen_length=8,steps=8",
                                  tasks=["tabom_gsm8k_cot"], task_manager=manager, num_fewshot=0, log_samples=True)
    res = out["results"]["tabom_gsm8k_cot"]
    assert res["sample_len"] == 3 and "exact_match,strict-match" in res and "exact_match,flexible-extract" in res
    contexts = {s["arguments"][0][0] for s in out["samples"]["tabom_gsm8k_cot"]}  # a sample per doc and filter
    assert contexts == {gsm8k_prompt(q) for q in questions}  # tabom eval --protocol release shows the same


def test_bad_benchmark_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'gsm9k'"):
        write_task_files(tmp_path, {"gsm9k": "x.jsonl"})
    with pytest.raises(FileNotFoundError, match="no such benchmark file"):
        write_task_files(tmp_path, {"gsm8k": str(tmp_path / "missing.jsonl")})
