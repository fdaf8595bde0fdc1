"""`tabom generate`: the base model decodes prompts and every token's decode step is recorded.

    model = tabom.models.load("tiny")
    jobs = task_jobs("math_chain", "train", n=500, seed=0)      # or file_jobs("prompts.jsonl")
    stats = build_trajectories(model, jobs, "runs/t.jsonl", BuildConfig(batch_size=64))
    stats.yield_                                                # kept / generated, whole file

One batch at a time: `batch_size` prompts (sorted by token length, so little padding) go through
`tabom.decoding.generate` in one forward batch per step; the responses are verified (the task
family's verifier, `verify_answer` for a reference answer, or the code `tests` run in the
sandbox); the rows kept are appended with one write + fsync, so a kill loses at most the batch
in flight. A rerun skips every id already written or rejected (`distributed.resume_ids`), and
several processes shard the work (`distributed.DistEnv`). `out.meta.json` records the settings,
counts per data source, the yield and the elapsed seconds.

Before any file is created or changed: the settings are resolved and checked, every prompt is
checked against the model's positions, `out` must be tabom's file for the same job (its sidecar,
`check_out_is_tabom` / `_check_owner`), and each process holds an exclusive lock (`OUT.lock` on
rank 0), so a second run on the same `out` is refused.

Randomness: each batch decodes with its own `torch.Generator` seeded from `seed` and the batch's
first id, so a run is reproducible for the same batch size and world size; at temperature 0 the
rows do not depend on either.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from tabom.decoding.settings import DecodeSettings
from tabom.outputs import exclusive_lock, lock_path, write_text_atomic
from tabom.trajectories.distributed import (
    DistEnv, append_rejected, finish_shards, leftover_worlds, read_rejected, rejected_path, resume_ids,
)
from tabom.trajectories.io import PathLike, TrajectoryWriter, iter_json_lines, shard_path
from tabom.trajectories.prompts import check_prompt_fits, read_prompts, verify_answer
from tabom.trajectories.schema import Trajectory

VERIFY_MODES: tuple[str, ...] = ("auto", "none")
KEEP_MODES: tuple[str, ...] = ("correct", "all")


@dataclass(frozen=True)
class Job:
    """One response to decode: its row id, prompt text and what checks the response."""

    id: str
    prompt: str
    data_source: str
    answer: str | None = None
    tests: tuple[str, ...] | None = None
    problem: Any = None
    """A `tabom.tasks.Problem` for built-in families (verified by its family)."""
    where: str = ""
    """Where the prompt came from, for errors: `FILE:LINE`, or the task family and problem id."""


@dataclass
class BuildConfig(DecodeSettings):
    """Decode and filter settings of `tabom generate`: the decoding knobs (None fields take the
    model's defaults, see :class:`tabom.decoding.settings.DecodeSettings`), then sampling and
    filtering."""

    batch_size: int = 32
    samples_per_prompt: int = 1
    verify: str = "auto"
    keep: str = "correct"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.verify not in VERIFY_MODES:
            raise ValueError(f"verify: {self.verify!r} is not one of {', '.join(VERIFY_MODES)}")
        if self.keep not in KEEP_MODES:
            raise ValueError(f"keep: {self.keep!r} is not one of {', '.join(KEEP_MODES)}")
        if self.samples_per_prompt < 1:
            raise ValueError("samples_per_prompt: must be >= 1")
        if self.samples_per_prompt > 1 and self.temperature == 0:
            raise ValueError("samples_per_prompt: > 1 needs temperature > 0 (greedy samples are identical)")

    def settings(self, eos_token_id: int) -> dict[str, Any]:
        """The `settings` object of every row (resolved config only)."""
        keys = ("gen_length", "steps", "block_length", "temperature", "top_p", "top_k",
                "tokens_per_step", "seed")
        fast = {k: v for k, v in (("threshold", self.threshold), ("cache", self.cache)) if v not in (None, "none")}
        return {k: getattr(self, k) for k in keys} | fast | {"eos_token_id": eos_token_id}


@dataclass
class BuildStats:
    """What a build did: this process's work and, on rank 0, the whole file's counts."""

    generated: int = 0
    kept: int = 0
    batches: int = 0
    nfe: int = 0
    """Forward calls of this process (one call covers a whole batch)."""
    row_forwards: int = 0
    """Sum over decoded rows of the forwards spent on each."""
    elapsed_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def yield_(self) -> float | None:
        """Kept / generated over the whole file (from the meta), None before anything was decoded."""
        total = self.meta.get("total", {})
        return total["kept"] / total["generated"] if total.get("generated") else None


# ----------------------------------------------------------------------------------- jobs
def task_jobs(family: str, split: str, n: int, seed: int = 0) -> list[Job]:
    """Jobs for `n` problems of a built-in task family's split (ids are the problems' ids)."""
    from tabom.tasks import get_family

    problems = get_family(family).problems(split, n, seed=seed)
    return [Job(id=p.id, prompt=p.prompt, data_source=family, answer=p.answer, problem=p,
                where=f"task {family} ({split}) problem {p.id}") for p in problems]


def file_jobs(path: PathLike) -> list[Job]:
    """Jobs for a prompt JSONL file (`read_prompts`); data_source defaults to the file's stem."""
    tag = Path(path).stem
    return [Job(id=r.id, prompt=r.prompt, data_source=r.data_source or tag, answer=r.answer,
                tests=tuple(r.tests) if r.tests else None, where=r.where) for r in read_prompts(path)]


def expand_samples(jobs: Sequence[Job], n: int) -> list[Job]:
    """n samples per prompt: ids `<id>#0` ... `<id>#{n-1}` (unchanged when n == 1)."""
    if n == 1:
        return list(jobs)
    return [replace(j, id=f"{j.id}#{k}") for j in jobs for k in range(n)]


# ---------------------------------------------------------------------------- verification
def code_of(response: str) -> str:
    """The program in a response: the first ``` fenced block's body, else the whole text."""
    if "```" not in response:
        return response
    body = response.split("```", 2)[1]
    first, _, rest = body.partition("\n")
    return rest if first.strip().isidentifier() or not first.strip() else body


def verify_jobs(jobs: Sequence[Job], responses: Sequence[str]) -> list[bool | None]:
    """Verdict per response: family verifier > code tests (sandbox) > reference answer > None."""
    verdicts: list[bool | None] = [None] * len(jobs)
    by_family: dict[str, list[int]] = {}
    with_tests: list[int] = []
    for i, job in enumerate(jobs):
        if job.problem is not None:
            by_family.setdefault(job.problem.family, []).append(i)
        elif job.tests:
            with_tests.append(i)
        elif job.answer is not None:
            verdicts[i] = verify_answer(responses[i], job.answer)
    if by_family:
        from tabom.tasks import get_family

        for name, idx in by_family.items():
            ok = get_family(name).verify_many([jobs[i].problem for i in idx], [responses[i] for i in idx])
            for i, v in zip(idx, ok):
                verdicts[i] = bool(v)
    if with_tests:
        from tabom.tasks.sandbox import run_many

        codes = [code_of(responses[i]) + "\n\n" + "\n".join(jobs[i].tests or ()) + "\n" for i in with_tests]
        for i, result in zip(with_tests, run_many(codes, workers=2)):
            ok = result.ok
            if ok and jobs[i].answer is not None:
                ok = verify_answer(responses[i], jobs[i].answer)
            verdicts[i] = ok
    return verdicts


def keeps(correct: bool | None, keep: str) -> bool:
    """`keep all` keeps every row; `keep correct` drops only rows verified wrong."""
    return keep == "all" or correct is not False


# ------------------------------------------------------------------------------ the build
def batch_seed(seed: int, first_id: str) -> int:
    """Seed of one batch's generator: 63 bits of sha256(seed | first id)."""
    return int(hashlib.sha256(f"{seed}|{first_id}".encode()).hexdigest()[:15], 16)


def decode_jobs(
    model: Any, jobs: Sequence[Job], prompt_ids: Sequence[list[int]], cfg: BuildConfig
) -> tuple[list[Trajectory], Any]:
    """Decode one batch and turn it into unverified rows. `cfg` must be resolved.

    Returns the rows (correct = None) and the `DecodeResult` (tokens (B, G), decoding_order (B, G)).
    """
    from tabom.decoding import generate

    assert cfg.gen_length is not None and cfg.steps is not None and cfg.strategy is not None
    device = getattr(model, "device", torch.device("cpu"))  # sampling draws on the model's device
    gen = torch.Generator(device=device).manual_seed(batch_seed(cfg.seed, jobs[0].id))
    result = generate(model, [list(p) for p in prompt_ids], cfg, generator=gen, batch_size=cfg.batch_size)
    settings = cfg.settings(int(model.eos_token_id))
    rows = []
    for job, ids, tokens, order in zip(jobs, prompt_ids, result.tokens, result.decoding_order):
        rows.append(Trajectory(
            id=job.id, prompt=job.prompt, response=model.decode(tokens), prompt_token_ids=list(ids),
            response_token_ids=tokens.tolist(), decoding_order=order.tolist(), method=cfg.strategy,
            data_source=job.data_source, correct=None, model=model.name, settings=dict(settings),
            answer=job.answer,
        ))
    return rows, result


def meta_path(out: PathLike) -> Path:
    """The sidecar of a trajectory file: `t.jsonl` -> `t.jsonl.meta.json`."""
    p = Path(out)
    return p.with_name(p.name + ".meta.json")


def file_counts(out: PathLike) -> dict[str, dict[str, int]]:
    """Per data source: generated, kept, correct, wrong, unverified (rows + rejection log)."""
    counts: dict[str, dict[str, int]] = {}

    def bump(source: str, correct: Any, kept: bool) -> None:
        c = counts.setdefault(source, dict(generated=0, kept=0, correct=0, wrong=0, unverified=0))
        c["generated"] += 1
        c["kept"] += int(kept)
        c["correct" if correct is True else "wrong" if correct is False else "unverified"] += 1

    if Path(out).exists():
        for _lineno, obj in iter_json_lines(out):
            if isinstance(obj, dict):
                bump(str(obj.get("data_source")), obj.get("correct"), True)
    for rec in read_rejected(rejected_path(out)).values():
        bump(str(rec.get("data_source")), rec.get("correct"), False)
    return counts


def check_out_is_not_input(out: PathLike, prompts: PathLike) -> None:
    """Refuse an `out` (or its sidecar, rejection log or lock) that is the prompt file itself,
    by any path: the same name, a symlink or a hard link (`os.path.samefile`)."""
    for path in (Path(out), meta_path(out), rejected_path(out), lock_path(out)):
        same = os.path.realpath(path) == os.path.realpath(prompts)
        if not same and path.exists() and Path(prompts).exists():
            same = os.path.samefile(path, prompts)
        if same:
            raise ValueError(f"--out: {path} is the --prompts file {prompts}; give another --out")


def _has_rows(out: Path, world: int) -> bool:
    """Whether anything a run wrote lies at `out`: rows, rejected ids, or shards of any world."""
    files = [out, rejected_path(out)]
    for w in {world, *leftover_worlds(out)} - {1}:
        files += [p for r in range(w) for p in (shard_path(out, r, w), rejected_path(shard_path(out, r, w)))]
    return any(p.is_file() and p.stat().st_size > 0 for p in files)


def _read_meta(out: Path) -> dict[str, Any] | None:
    """The sidecar of `out`, None when absent; a sidecar tabom cannot have written is an error."""
    path = meta_path(out)
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("settings"), dict) or "model" not in meta:
        raise ValueError(f"{path}: not a sidecar written by `tabom generate` (no model and settings); "
                         f"refusing to touch {out}; give another --out")
    return meta


def check_out_is_tabom(out: PathLike) -> dict[str, Any] | None:
    """Refuse an `out` that `tabom generate` did not write; return its sidecar (None if absent).

    A non-empty `out` must have its sidecar (`meta_path`, written before the first row) holding
    a model and settings; `out` must be a regular file. Reads only; needs no model, so the
    command calls it before loading one.
    """
    out = Path(out)
    if out.exists() and not out.is_file():
        raise ValueError(f"--out: {out} is not a regular file")
    meta = _read_meta(out)
    if meta is None and out.is_file() and out.stat().st_size > 0:
        raise ValueError(f"--out: {out} exists but has no {meta_path(out).name} beside it, so it is not a "
                         "trajectory file written by `tabom generate`; refusing to change it; give another --out")
    return meta


def _check_owner(out: Path, model_name: str, settings: dict[str, Any], world: int) -> None:
    """Refuse, before anything is changed, an `out` that is not tabom's file for this job.

    `check_out_is_tabom`, and when rows exist (in `out`, its rejection log or shards) the
    sidecar's model and decode settings must equal this run's: a rerun appends to the same job.
    A sidecar beside no rows at all (a run stopped before its first batch) is replaced. Shards
    (tabom's own names) need no sidecar.
    """
    meta = check_out_is_tabom(out)
    if meta is None or not _has_rows(out, world):
        return
    path = meta_path(out)
    for key, value in [("model", model_name), *(("settings." + k, v) for k, v in settings.items())]:
        before = meta.get("model") if key == "model" else meta["settings"].get(key[9:])
        if before != value:
            raise ValueError(f"{path}: {key}: this run has {value!r} but {out} was built with {before!r}; "
                             "use another --out")


def _write_meta(out: Path, meta: dict[str, Any]) -> None:
    write_text_atomic(meta_path(out), json.dumps(meta, indent=1) + "\n")


def check_prompts_fit(model: Any, jobs: Sequence[Job], encoded: Sequence[list[int]], gen_length: int) -> None:
    """Raise `ValueError` naming the first job (FILE:LINE or task problem) whose prompt plus
    `gen_length` response tokens exceed the model's positions (`prompts.check_prompt_fits`)."""
    for job, ids in zip(jobs, encoded):
        check_prompt_fits(model, len(ids), gen_length, job.where or f"prompt {job.id}")


def _decode_all(
    model: Any, todo: Sequence[Job], encoded: Sequence[list[int]], order: Sequence[int], cfg: BuildConfig,
    shard: Path, stats: BuildStats, *, env: DistEnv, on_batch: Callable[[int, list[Trajectory]], None] | None,
    progress: bool,
) -> None:
    """Decode `todo` in batches of `cfg.batch_size` (taken in `order`), verify, append to `shard`."""
    from tabom.progress import progress_bar

    with TrajectoryWriter(shard) as writer, progress_bar(enabled=progress) as bar:
        task = bar.add_task(f"generate (rank {env.rank})", total=len(todo))
        for b, lo in enumerate(range(0, len(order), cfg.batch_size)):
            idx = order[lo:lo + cfg.batch_size]
            batch = [todo[i] for i in idx]
            rows, result = decode_jobs(model, batch, [encoded[i] for i in idx], cfg)
            responses = [r.response for r in rows]
            verdicts = verify_jobs(batch, responses) if cfg.verify == "auto" else [None] * len(rows)
            kept, rejected = [], []
            for row, verdict in zip(rows, verdicts):
                row.correct = verdict
                if keeps(verdict, cfg.keep):
                    kept.append(row)
                else:
                    rejected.append({"id": row.id, "data_source": row.data_source, "correct": verdict})
            writer.write_many(kept)
            append_rejected(shard, rejected)
            stats.generated += len(rows)
            stats.kept += len(kept)
            stats.batches += 1
            stats.nfe += result.nfe
            stats.row_forwards += int(result.steps_run.sum())
            bar.update(task, advance=len(rows))
            if on_batch is not None:
                on_batch(b, kept)


def build_trajectories(
    model: Any,
    jobs: Sequence[Job],
    out: PathLike,
    cfg: BuildConfig,
    *,
    env: DistEnv | None = None,
    source: dict[str, Any] | None = None,
    on_batch: Callable[[int, list[Trajectory]], None] | None = None,
    progress: bool = False,
) -> BuildStats:
    """Decode every job not yet in `out`, verify, keep, append; rank 0 writes `out.meta.json`.

    Args:
        model: a `DiffusionLM` (or anything with its attributes) on this process's device.
        jobs: all jobs of the run, the same list on every rank (already sample-expanded).
        out: the merged trajectory file; rank r of W appends to `shard_path(out, r, W)`.
        cfg: settings (resolved here against the model).
        env: process layout (default: from the environment).
        source: what the prompts were (recorded in the meta).
        on_batch: called after each batch is written with (batch index, rows kept); a test hook.
        progress: show a progress bar over this rank's jobs.
    """
    start = time.time()
    env = env or DistEnv.from_environ()
    cfg = cfg.resolved(model)  # raises on settings that cannot decode, before any file is touched
    assert cfg.gen_length is not None
    out = Path(out)
    settings = cfg.settings(int(model.eos_token_id))
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("jobs: ids are not unique")
    encoded_all = [model.encode_prompt(j.prompt) for j in jobs]
    check_prompts_fit(model, jobs, encoded_all, cfg.gen_length)
    stats = BuildStats()
    guarded = out if env.is_main else shard_path(out, env.rank, env.world)
    with exclusive_lock(lock_path(guarded), what=f"--out {out}"):
        if env.is_main:
            _check_owner(out, model.name, settings, env.world)
            if not _has_rows(out, env.world):  # written first, so a rerun after a kill is checked too
                out.parent.mkdir(parents=True, exist_ok=True)
                _write_meta(out, {"model": model.name, "settings": settings, "status": "running"})
        done = resume_ids(out, env)
        mine = [i for i, j in enumerate(jobs) if j.id not in done][env.rank::env.world]
        todo = [jobs[i] for i in mine]
        encoded = [encoded_all[i] for i in mine]
        order = sorted(range(len(todo)), key=lambda i: len(encoded[i]))  # stable: less padding
        _decode_all(model, todo, encoded, order, cfg, shard_path(out, env.rank, env.world), stats,
                    env=env, on_batch=on_batch, progress=progress)
        finish_shards(out, env)
        stats.elapsed_s = time.time() - start
        if env.is_main:
            counts = file_counts(out)
            keys = ("generated", "kept", "correct", "wrong", "unverified")
            total = {k: sum(c[k] for c in counts.values()) for k in keys}
            stats.meta = {
                "model": model.name, "method": cfg.strategy, "settings": settings,
                "verify": cfg.verify, "keep": cfg.keep, "samples_per_prompt": cfg.samples_per_prompt,
                "batch_size": cfg.batch_size, "world_size": env.world, "source": source or {},
                "status": "done", "counts": counts, "total": total,
                "yield": round(total["kept"] / total["generated"], 6) if total["generated"] else None,
                "last_run": {"generated_rank0": stats.generated, "kept_rank0": stats.kept,
                             "elapsed_s": round(stats.elapsed_s, 3)},
            }
            _write_meta(out, stats.meta)
    return stats
