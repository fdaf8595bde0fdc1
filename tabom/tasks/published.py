"""The paper's training sets as published, read from local files with the `datasets` library.

    rows = read_table("data/MixChain-Z-PRM12K")              # a parquet/JSON/JSONL file or folder
    spec = detect(columns) or PUBLISHED["prm12k"]
    prepare("prm12k", "data/prm12k.parquet", "data/prm12k")  # prompts.jsonl + sft_gt.jsonl

| name | hub id | columns read | prompt | reference (verification) | ground truth (SFT-GT) |
|---|---|---|---|---|---|
| `prm12k` | horseee/MixChain-Z-PRM12K | question, answer, target | `question` | `target` (the final answer) | `answer` (the original PRM12K solution) |
| `ling_coder` | inclusionAI/Ling-Coder-SFT | mid, messages | first human/user message | none | first assistant message |

MixChain-Z-PRM12K's other columns (`solution_0..4`, `correct_1..4`, token counts) and
Ling-Coder-SFT's others are not read. The roles of Ling-Coder-SFT's `messages` are matched
case-insensitively (`HUMAN` or `user`, then `ASSISTANT`).

`read_table` takes a `.parquet` file, a `.json` / `.jsonl` file, a folder of parquet files (a
downloaded dataset repository, e.g. its `data/train-*.parquet`), or a folder written by
`datasets`' `save_to_disk` (a `Dataset`, or a `DatasetDict` whose `split` is taken: `train` by
default). Files are streamed (`load_dataset(..., streaming=True)`): nothing is copied into the
`datasets` cache, and a 5M-row Ling-Coder-SFT is never held in memory. Nothing is downloaded.

Bad input is a `ValueError`: `FILE: column 'target' missing (...)`, or `FILE:ROW: field: problem`
(ROW is the 1-based row; the line for JSONL without blank lines).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARQUET, JSON_SUFFIXES = ".parquet", (".json", ".jsonl")


@dataclass(frozen=True)
class PublishedSet:
    """A published training set: where it comes from, the columns read, and how a row maps to tabom."""

    name: str
    hub_id: str
    domain: str
    columns: tuple[str, ...]
    prompt: Callable[[dict[str, Any], Callable[[str, str], ValueError]], str]
    reference: Callable[[dict[str, Any]], str | None]
    solution: Callable[[dict[str, Any], Callable[[str, str], ValueError]], str]
    row_id: Callable[[dict[str, Any], int], str]


def _text(row: dict[str, Any], key: str, err: Callable[[str, str], ValueError]) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise err(key, f"expected a non-empty string, got {value!r:.40}")
    return value


def _message(row: dict[str, Any], roles: tuple[str, ...], err: Callable[[str, str], ValueError]) -> str:
    messages = row.get("messages")
    if not isinstance(messages, list):
        raise err("messages", f"expected a list of {{role, content}}, got {type(messages).__name__}")
    for i, message in enumerate(messages):
        if isinstance(message, dict) and str(message.get("role", "")).lower() in roles:
            content = message.get("content")
            if not isinstance(content, str) or not content.strip():
                raise err(f"messages[{i}].content", "expected a non-empty string")
            return content
    raise err("messages", f"no {'/'.join(roles)} message")


PUBLISHED: dict[str, PublishedSet] = {
    "prm12k": PublishedSet(
        name="prm12k", hub_id="horseee/MixChain-Z-PRM12K", domain="math",
        columns=("question", "answer", "target"),
        prompt=lambda row, err: _text(row, "question", err),
        reference=lambda row: None if row.get("target") is None else str(row["target"]),
        solution=lambda row, err: _text(row, "answer", err),
        row_id=lambda row, i: f"prm12k-{row.get('__index_level_0__', i)}",
    ),
    "ling_coder": PublishedSet(
        name="ling_coder", hub_id="inclusionAI/Ling-Coder-SFT", domain="code",
        columns=("mid", "messages"),
        prompt=lambda row, err: _message(row, ("human", "user"), err),
        reference=lambda row: None,
        solution=lambda row, err: _message(row, ("assistant", "gpt"), err),
        row_id=lambda row, i: f"ling-{row.get('mid') or i}",
    ),
}


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(f"*{PARQUET}") if p.is_file())


def is_table_path(path: str | Path) -> bool:
    """True for what only `read_table` reads: a .parquet or .json file, or a folder of data."""
    p = Path(path)
    if p.is_dir():
        return (p / "dataset_dict.json").exists() or (p / "state.json").exists() or bool(_parquet_files(p))
    return p.suffix in (PARQUET, ".json")


def read_table(path: str | Path, split: str | None = None, default_split: str = "train") -> Iterator[dict[str, Any]]:
    """Stream the rows of a parquet / JSON / JSONL file, a parquet folder or a `save_to_disk` folder.

    A saved `DatasetDict` gives its `split`, else `default_split`, else its only split.
    """
    import datasets

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        if p.is_dir() and ((p / "dataset_dict.json").exists() or (p / "state.json").exists()):
            ds = datasets.load_from_disk(str(p))
            if isinstance(ds, datasets.DatasetDict):
                splits = list(ds)
                name = split or (default_split if default_split in ds else splits[0] if len(splits) == 1 else None)
                if name not in ds:
                    raise ValueError(f"{p}: split {name or split!r} not in the saved DatasetDict (splits: {', '.join(splits)}; give --split)")
                ds = ds[name]
            return iter(ds)
        if p.is_dir():
            files = _parquet_files(p)
            if not files:
                raise ValueError(f"{p}: a folder without dataset_dict.json, state.json or *.parquet files")
            return iter(datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train", streaming=True))
        if p.suffix == PARQUET:
            return iter(datasets.load_dataset("parquet", data_files=[str(p)], split="train", streaming=True))
        if p.suffix in JSON_SUFFIXES:
            return iter(datasets.load_dataset("json", data_files=[str(p)], split="train", streaming=True))
    except (OSError, datasets.exceptions.DatasetGenerationError) as exc:
        raise ValueError(f"{p}: not readable as a dataset ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    raise ValueError(f"{p}: expected a .parquet, .json or .jsonl file, or a dataset folder")


def detect(columns: set[str] | list[str]) -> PublishedSet | None:
    """The published set whose columns are all present, or None."""
    return next((s for s in PUBLISHED.values() if set(s.columns) <= set(columns)), None)


def is_published_file(path: str | Path) -> bool:
    """True when `path` must be read as a published set: a .parquet file or a dataset folder, or a
    JSON / JSONL file whose first record has a published set's columns."""
    p = Path(path)
    if is_table_path(p) and p.suffix != ".json":
        return True
    if not p.is_file() or p.suffix not in JSON_SUFFIXES:
        return False
    with open(p, encoding="utf-8", errors="replace") as fh:
        first = next((line for line in fh if line.strip()), "")
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        obj = None
    if obj is None and p.suffix == ".json":  # a JSON array: ask `datasets` for the first record
        obj = next(read_table(p), None)
    return isinstance(obj, dict) and detect(obj) is not None


def published_rows(path: str | Path, name: str | None = None, split: str | None = None,
                   limit: int | None = None) -> Iterator[tuple[PublishedSet, str, int, dict[str, Any]]]:
    """(set, where, row number, row) for every row; the set is `name`, or detected from the first row.

    A first row without the set's columns raises one ValueError naming the file and the columns.
    """
    for i, row in enumerate(read_table(path, split), start=1):
        if i == 1:
            spec = PUBLISHED.get(name) if name else detect(row)
            if name and spec is None:
                raise ValueError(f"{name}: unknown dataset (known: {', '.join(PUBLISHED)})")
            if spec is None:
                known = "; ".join(s.hub_id + ": " + ", ".join(s.columns) for s in PUBLISHED.values())
                raise ValueError(f"{path}: columns {sorted(row)[:8]} match no published set ({known})")
            missing = [c for c in spec.columns if c not in row]
            if missing:
                raise ValueError(f"{path}: column {missing[0]!r} missing ({spec.hub_id} as published has "
                                 f"{', '.join(spec.columns)}; found {', '.join(sorted(row)[:8])})")
        if limit is not None and i > limit:
            return
        yield spec, f"{path}:{i}", i, row


def _err(where: str) -> Callable[[str, str], ValueError]:
    return lambda field, problem: ValueError(f"{where}: {field}: {problem}")


def training_objects(path: str | Path, name: str | None = None, split: str | None = None,
                     limit: int | None = None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(prompt object, ground-truth object) per row, both in tabom's prompt-file layout.

    The prompt object has `id`, `prompt`, `answer` (the reference, when the set has one) and
    `data_source`; the ground-truth one has the published solution as `answer` (SFT-GT).
    """
    for spec, where, i, row in published_rows(path, name, split, limit):
        err = _err(where)
        ident, prompt = spec.row_id(row, i - 1), spec.prompt(row, err)
        prompt_obj: dict[str, Any] = {"id": ident, "prompt": prompt}
        reference = spec.reference(row)
        if reference is not None:
            prompt_obj["answer"] = reference
        prompt_obj["data_source"] = spec.name
        yield prompt_obj, {"id": ident, "prompt": prompt, "answer": spec.solution(row, err), "data_source": spec.name}


def prompt_objects(path: str | Path, name: str | None = None, split: str | None = None,
                   limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The prompt-file objects of `training_objects` (for `tabom generate --prompts`)."""
    for prompt_obj, _ in training_objects(path, name, split, limit):
        yield prompt_obj


def sft_objects(path: str | Path, name: str | None = None, split: str | None = None,
                limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The ground-truth objects of `training_objects` (for `format: prompts` training)."""
    for _, sft_obj in training_objects(path, name, split, limit):
        yield sft_obj


@dataclass(frozen=True)
class Prepared:
    """What `prepare` wrote: the two files and their line counts."""

    prompts: Path
    sft_gt: Path
    n: int


def prepare(name: str, path: str | Path, out: str | Path, *, split: str | None = None,
            limit: int | None = None, overwrite: bool = False) -> Prepared:
    """Write `OUT/prompts.jsonl` (prompts + references for `tabom generate`) and `OUT/sft_gt.jsonl`
    (prompt + ground-truth answer for `format: prompts` training). All or nothing: both files
    are written into a temporary folder, checked, then moved into `out`."""
    if name not in PUBLISHED:
        raise ValueError(f"{name}: unknown dataset (known: {', '.join(PUBLISHED)})")
    out = Path(out)
    targets = [out / "prompts.jsonl", out / "sft_gt.jsonl"]
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise ValueError(f"{existing[0]}: exists (pass --overwrite to replace it)")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".prepare-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        n = 0
        with open(tmp / "prompts.jsonl", "w", encoding="utf-8") as fp, open(tmp / "sft_gt.jsonl", "w", encoding="utf-8") as fs:
            for prompt_obj, sft_obj in training_objects(path, name, split, limit):
                fp.write(json.dumps(prompt_obj, ensure_ascii=False) + "\n")
                fs.write(json.dumps(sft_obj, ensure_ascii=False) + "\n")
                n += 1
        if n == 0:
            raise ValueError(f"{path}: no rows")
        for target in targets:
            os.replace(tmp / target.name, target)
    except BaseException:
        shutil.rmtree(out if created else tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return Prepared(targets[0], targets[1], n)
