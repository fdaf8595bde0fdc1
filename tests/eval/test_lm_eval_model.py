"""The `tabom` lm-eval model run offline on a local generate_until task with a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TASK_YAML = """task: tabom_local_echo
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def write_task(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"question": f"{a}+{a}=", "answer": str(2 * a)}) + "\n" for a in range(3)))
    (folder / "echo.yaml").write_text(TASK_YAML.format(data=data))
    return folder


def test_simple_evaluate_offline(tiny_dirs: dict[str, Path], tmp_path: Path, offline: None) -> None:
    """3 documents decoded by tabom's engine; exact_match exists and lies in [0, 1]."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import tabom.eval.lm_eval_model  # noqa: F401  (registers "tabom")

    manager = TaskManager(include_path=str(write_task(tmp_path)), include_defaults=False)  # fast: no index
    out = lm_eval.simple_evaluate(model="tabom", model_args=f"model={tiny_dirs['a']},device=cpu,gen_length=8,steps=4",
                                  tasks=["tabom_local_echo"], task_manager=manager, batch_size=2, log_samples=True)
    res = out["results"]["tabom_local_echo"]
    assert 0.0 <= res["exact_match,none"] <= 1.0
    samples = out["samples"]["tabom_local_echo"]
    assert len(samples) == 3
    assert all("\n" not in s["resps"][0][0] for s in samples)  # cut at the `until` stop


def test_generate_until_batches_and_cuts(tiny_dirs: dict[str, Path]) -> None:
    """Two gen_kwargs groups; each response cut at its stops; the same prompt decodes the same (greedy)."""
    from lm_eval.api.instance import Instance

    from tabom.eval.lm_eval_model import TabomLM, cut_at_stops

    lm = TabomLM(model=str(tiny_dirs["a"]), device="cpu", gen_length="none", batch_size=4)
    reqs = [Instance("generate_until", {}, ("1+1=", {"until": ["\n"], "max_gen_toks": 6}), 0),
            Instance("generate_until", {}, ("2+2=", {"until": [], "max_gen_toks": 4}), 1),
            Instance("generate_until", {}, ("1+1=", {"until": ["\n"], "max_gen_toks": 6}), 2)]
    outs = lm.generate_until(reqs, disable_tqdm=True)
    assert len(outs) == 3 and outs[0] == outs[2]
    assert len(outs[1]) <= 4  # a character tokenizer: at most one character per token
    assert cut_at_stops("ab\ncd###", ["###", "\n"]) == "ab"


def test_loglikelihood_says_why(tiny_dirs: dict[str, Path]) -> None:
    from tabom.eval.lm_eval_model import TabomLM

    lm: Any = TabomLM(model=str(tiny_dirs["a"]), device="cpu")
    with pytest.raises(NotImplementedError, match="evaluated generatively"):
        lm.loglikelihood([])
    with pytest.raises(NotImplementedError, match="generatively"):
        lm.loglikelihood_rolling([])


def test_cli_hands_arguments_to_lm_eval(
    tiny_dirs: dict[str, Path], tmp_path: Path, offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tabom lm-eval --model tabom ...` runs lm-eval's own command line and writes its results.

    The task lies in --include_path, so lm-eval's built-in task index (thousands of YAML files,
    ~40 s on a busy core) is never built: every TaskManager made indexes the include path alone.
    """
    from lm_eval.tasks.manager import TaskManager

    from tabom.commands.lm_eval import run_lm_eval

    original = TaskManager.__init__
    made: list[tuple[Any, bool]] = []

    def recorded(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append((kwargs.get("include_path"), kwargs.get("include_defaults", True)))
        original(self, *args, **kwargs)

    monkeypatch.setattr(TaskManager, "__init__", recorded)

    out = tmp_path / "lm_out"
    tasks = write_task(tmp_path)
    run_lm_eval(["--model", "tabom", "--model_args", f"model={tiny_dirs['a']},device=cpu,gen_length=8",
                 "--tasks", "tabom_local_echo", "--include_path", str(tasks),
                 "--output_path", str(out), "--batch_size", "3"])
    files = list(out.rglob("results_*.json"))
    assert files, list(out.rglob("*"))
    data = json.loads(files[0].read_text())
    assert "exact_match,none" in data["results"]["tabom_local_echo"]
    assert made and all(defaults is False and paths == [str(tasks)] for paths, defaults in made), made


def test_narrow_index_only_when_every_task_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The include path for its own tasks, a release task's own folder; None (the whole index) otherwise."""
    import lm_eval

    from tabom.commands.lm_eval import _narrow_paths

    tasks = write_task(tmp_path)
    gsm8k = Path(lm_eval.__file__).parent / "tasks" / "gsm8k"
    assert _narrow_paths(["--tasks", "tabom_local_echo", "--include_path", str(tasks)]) == [tasks]
    assert _narrow_paths(["run", "-t", "gsm8k_cot,tabom_local_echo", f"--include_path={tasks}"]) == [gsm8k, tasks]
    assert _narrow_paths(["--tasks", "tabom_local_echo", "hellaswag", "--include_path", str(tasks)]) is None
    assert _narrow_paths(["--tasks", "tabom_*", "--include_path", str(tasks)]) is None  # a pattern
    assert _narrow_paths(["--model", "tabom"]) is None  # no --tasks
    monkeypatch.setenv("TABOM_LM_EVAL_FULL_INDEX", "1")
    assert _narrow_paths(["--tasks", "tabom_local_echo", "--include_path", str(tasks)]) is None


DRIVER = """
import json, sys
import tabom.eval.lm_eval_model as m
from tabom.commands.lm_eval import run_lm_eval

seen = []
original = m.TabomLM.generate_until
def counted(self, requests, disable_tqdm=False):
    seen.extend(r.doc_id for r in requests)
    return original(self, requests, disable_tqdm=True)
m.TabomLM.generate_until = counted
run_lm_eval(["--model", "tabom", "--model_args", sys.argv[2], "--tasks", "tabom_local_echo",
             "--include_path", sys.argv[1], "--output_path", sys.argv[3], "--log_samples", "--batch_size", "2"])
print("DECODED", json.dumps(sorted(set(seen))))
"""


def _run(n: int, script: Path, tasks: Path, model_args: str, out: Path) -> tuple[list[list[int]], Any]:
    """`tabom lm-eval` (the driver) under torchrun with ``n`` processes -> (documents each rank decoded,
    the per-sample responses of the one samples file written)."""
    import os
    import subprocess
    import sys

    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", str(n), "--master_port",
           str(29600 + n + os.getpid() % 1000), str(script), str(tasks), model_args, str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    decoded = [json.loads(x.split(" ", 1)[1]) for x in proc.stdout.splitlines() if x.startswith("DECODED ")]
    files = list(out.rglob("samples_tabom_local_echo_*.jsonl"))
    assert len(decoded) == n and len(files) == 1, (proc.stdout[-2000:], files)  # rank 0 alone writes
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    return decoded, sorted((r["doc_id"], r["filtered_resps"]) for r in rows)


def test_two_processes_give_the_one_process_results(tiny_dirs: dict[str, Path], tmp_path: Path, offline: None) -> None:
    """torchrun --nproc_per_node 2 (gloo, CPU) of `tabom lm-eval`: the model reports rank/world size, so
    lm-eval gives each rank a share of the documents (none decoded twice) and rank 0 writes the
    1-process per-sample responses."""
    tasks = write_task(tmp_path)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    args = f"model={tiny_dirs['a']},device=cpu,gen_length=8,steps=8"
    (one,), single = _run(1, script, tasks, args, tmp_path / "one")
    two, gathered = _run(2, script, tasks, args, tmp_path / "two")
    assert one == [0, 1, 2] and len(single) == 3
    assert sorted(two[0] + two[1]) == [0, 1, 2] and two[0] and two[1]
    assert gathered == single


def test_task_documents_follows_limit_and_samples() -> None:
    """The count lm-eval deals over the ranks: --samples' length, else --limit capped by the documents."""
    from types import SimpleNamespace

    from tabom.commands.lm_eval import task_documents

    task = SimpleNamespace(eval_docs=[{}] * 5)
    assert task_documents(task, None, None) == 5 and task_documents(task, 0, None) == 5
    assert task_documents(task, 2, None) == 2 and task_documents(task, 9, None) == 5
    assert task_documents(task, 2, [0, 3, 4]) == 3 and task_documents(task, 2, []) == 2


def test_more_processes_than_documents_is_one_error(tiny_dirs: dict[str, Path], tmp_path: Path, offline: None) -> None:
    """`tabom lm-eval` under torchrun with 2 processes on a 1-document task: one `error:` line naming the
    task and the counts, exit 2 on both ranks (torchrun itself exits 1), no results or samples file."""
    import os
    import re
    import subprocess
    import sys

    tasks = write_task(tmp_path)
    (tmp_path / "data.jsonl").write_text(json.dumps({"question": "1+1=", "answer": "2"}) + "\n")
    out = tmp_path / "out"
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port",
           str(29700 + os.getpid() % 1000), "-m", "tabom.cli", "lm-eval", "--model", "tabom", "--model_args",
           f"model={tiny_dirs['a']},device=cpu,gen_length=8,steps=4", "--tasks", "tabom_local_echo",
           "--include_path", str(tasks), "--output_path", str(out), "--log_samples"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    log = proc.stdout + proc.stderr
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert errors == ["error: lm-eval: task tabom_local_echo: 1 problem for 2 processes; run at most 1 process "
                      "(torchrun --nproc_per_node 1), or more problems"], log[-4000:]
    assert proc.returncode == 1 and re.findall(r"exitcode\s+: (-?\d+)", log) == ["2", "2"], log[-4000:]
    assert log.count("Traceback") == 1 and "did not find any docs" not in log, log[-4000:]  # torchrun's own report
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_batch_size_auto_picks_by_memory_and_decodes_the_same(tiny_dirs: dict[str, Path]) -> None:
    """`batch_size=auto`: one request per batch with max_memory=1MB, all 3 with 100GB; the responses equal
    an explicit batch size's; lm-eval's own `--batch_size auto:4` asks for the same."""
    from lm_eval.api.instance import Instance

    from tabom.eval.lm_eval_model import TabomLM

    reqs = [Instance("generate_until", {}, (f"{a}+{a}=", {"until": ["\n"], "max_gen_toks": 6}), a) for a in range(3)]
    small = TabomLM(model=str(tiny_dirs["a"]), device="cpu", batch_size="auto", max_memory="1MB")
    large = TabomLM(model=str(tiny_dirs["a"]), device="cpu", batch_size="auto", max_memory="100GB")
    explicit = TabomLM(model=str(tiny_dirs["a"]), device="cpu", batch_size=2)
    outs = [lm.generate_until(reqs, disable_tqdm=True) for lm in (small, large, explicit)]
    assert list(small.batch_sizes.values()) == [1] and list(large.batch_sizes.values()) == [3]
    assert outs[0] == outs[1] == outs[2]
    from_flag = TabomLM.create_from_arg_obj({"model": str(tiny_dirs["a"]), "device": "cpu"}, {"batch_size": "auto:4"})
    assert from_flag.batch_size is None
    with pytest.raises(ValueError, match="only with --batch-size auto"):
        TabomLM(model=str(tiny_dirs["a"]), device="cpu", batch_size=4, max_memory="1GB")
