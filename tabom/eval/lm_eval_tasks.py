"""lm-eval task files for the release's tasks over the benchmarks' own local files (offline).

    python -m tabom.eval.lm_eval_tasks --out my_tasks gsm8k=data/gsm8k/test.jsonl math500=data/math500.jsonl
    tabom lm-eval --model tabom --model_args model=/ckpt/Dream,... --include_path my_tasks \
        --tasks tabom_gsm8k_cot,tabom_minerva_math500 --num_fewshot 0 --apply_chat_template

Each file ``include``s the installed lm-eval's own task YAML (by absolute path: its prompts,
filters and metrics unchanged) and replaces only the data source with the local file (JSONL or
JSON via the ``json`` loader, parquet via ``parquet``). The release runs every task 0-shot; pass
``--num_fewshot 0`` as its scripts do. HumanEval and MBPP score with the ``evaluate`` library's
``code_eval`` metric and IFEval needs ``langdetect``/``nltk`` data, which lm-eval loads from the
network: offline, score those with ``tabom eval --protocol release`` instead.

:func:`index_paths` is what keeps ``tabom lm-eval``'s start short: lm-eval's own ``TaskManager``
parses every one of its ~14,000 task YAML files before it runs anything (6 s on a quiet core, 30+
on a busy one, paid again by every process under ``torchrun``); when the tasks asked for lie in
``--include_path`` or are the release's tasks, indexing their folders alone finds the same tasks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tabom.tasks.release_protocol import RELEASE_TASKS

TASK_FILES = {"gsm8k": "gsm8k/gsm8k-cot.yaml", "math500": "minerva_math/minerva_math500.yaml",
              "humaneval": "humaneval/humaneval_instruct.yaml", "mbpp": "mbpp/mbpp_instruct.yaml",
              "ifeval": "ifeval/ifeval.yaml"}
"""Where each release task's YAML lies inside the installed ``lm_eval/tasks``."""


def write_task_files(out: Path, files: dict[str, str]) -> list[Path]:
    """One ``tabom_<lm-eval task>.yaml`` per benchmark in ``out``; returns their paths.

    ``files`` maps a benchmark name (gsm8k, math500, humaneval, mbpp, ifeval) to its local file.
    """
    import lm_eval  # noqa: PLC0415

    tasks_dir = Path(lm_eval.__file__).parent / "tasks"
    written = []
    for name, file in files.items():
        if name not in TASK_FILES:
            raise ValueError(f"lm-eval tasks: unknown benchmark {name!r} (known: {', '.join(TASK_FILES)})")
        data = Path(file).resolve()
        if not data.is_file():
            raise FileNotFoundError(f"{data}: no such benchmark file")
        loader = "parquet" if data.suffix == ".parquet" else "json"
        task = f"tabom_{RELEASE_TASKS[name].lm_eval_task}"
        lines = [f"include: {json.dumps(str(tasks_dir / TASK_FILES[name]))}", f"task: {task}",
                 f"dataset_path: {loader}", "dataset_name: null",
                 f"dataset_kwargs: {{data_files: {{test: {json.dumps(str(data))}}}}}",
                 "test_split: test", "training_split: null", "validation_split: null"]
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{task}.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def index_paths(tasks: list[str], include_path: str | None) -> list[Path] | None:
    """The folders lm-eval needs to index to find ``tasks`` (plain task names), or None for its whole index.

    The folders are the release tasks' own ones inside the installed ``lm_eval/tasks`` (for names in
    :data:`TASK_FILES`) followed by ``include_path`` (which overrides them, as in lm-eval's own
    order). None (index everything, as lm-eval does) when a name is a pattern, a file, a group or a
    tag, or is not a task found in those folders: the narrow index then could miss what it needs.
    """
    import lm_eval  # noqa: PLC0415
    from lm_eval.tasks import TaskManager  # noqa: PLC0415

    if not tasks or any(not t or any(c in t for c in "*?[/\\") or t.endswith((".yaml", ".yml")) for t in tasks):
        return None
    folders = {RELEASE_TASKS[k].lm_eval_task: TASK_FILES[k].split("/")[0] for k in TASK_FILES}
    tasks_dir = Path(lm_eval.__file__).parent / "tasks"
    paths = sorted({tasks_dir / folders[t] for t in tasks if t in folders})
    if include_path:
        paths.append(Path(include_path))
    if not paths or not all(p.is_dir() for p in paths):
        return None
    found = set(TaskManager(include_path=[str(p) for p in paths], include_defaults=False).all_subtasks)
    return paths if all(t in found for t in tasks) else None


def main() -> None:
    """Command line: ``--out DIR name=file ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("files", nargs="+", help="benchmark=file, e.g. gsm8k=data/gsm8k/test.jsonl")
    args = parser.parse_args()
    pairs = {}
    for item in args.files:
        name, sep, file = item.partition("=")
        if not sep:
            raise SystemExit(f"error: {item!r}: expected benchmark=file")
        pairs[name.strip()] = file.strip()
    for path in write_task_files(args.out, pairs):
        print(path)


if __name__ == "__main__":
    main()
