"""Training rows, the per-epoch order, and collation into an `ObjectiveBatch`.

Rows are (prompt ids, response ids, decode steps): the response is exactly `gen_length` ids.

- trajectory JSONL: prompt_token_ids, response_token_ids, decoding_order as recorded (SFT-SD and
  the trajectory methods). A malformed row raises the schema's `FILE:LINE: field: ...` error.
  Lines in the authors' release layouts get their prompt ids from `model` (chat template), see
  `tabom.trajectories.release`; `data.methods` keeps only the listed `method`s.
- prompt/answer JSONL (`format: prompts`): the `answer` tokenized and EOS-padded (SFT-GT);
  steps are all -1 (NELBO does not read them).
- a built-in task family (`data.task`): each problem's `reference` (or `native`) answer.

Trajectory lines go through `TrajectoryChecker` with the model's vocabulary size, the checker of
`tabom data inspect --model`: an out-of-range token id or a repeated id is a `FILE:LINE` error
before any step runs. :func:`fingerprint_rows` (sha256 of the loaded rows) is saved in every
checkpoint so a resume on different data is refused.

    rows = load_rows(cfg.data, model)
    order = epoch_order(len(rows), seed, epoch)                    # same on every rank
    for idx in rank_batches(order, batch_size, rank, world):       # this rank's micro-batches
        batch = collate([rows[i] for i in idx], pad_id, mask_id)   # ObjectiveBatch, left-padded
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tabom.config import DataConfig
from tabom.models.diffusion_lm import DiffusionLM
from tabom.objectives.types import ObjectiveBatch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One training example: prompt ids (P,), response ids (G,), decode step per response id (G,)."""

    prompt: tuple[int, ...]
    response: tuple[int, ...]
    steps: tuple[int, ...]


def answer_ids(model: DiffusionLM, text: str, gen_length: int) -> list[int] | None:
    """Answer text -> `gen_length` ids (answer, then at least one EOS); None when it does not fit."""
    ids = list(model.tokenizer.encode(text, add_special_tokens=False))
    if len(ids) >= gen_length:
        return None
    return ids + [model.eos_token_id] * (gen_length - len(ids))


def _trajectory_rows(path: Path, cfg: DataConfig, model: DiffusionLM) -> list[Row]:
    from tabom.trajectories.io import iter_json_lines
    from tabom.trajectories.release import is_release_line, release_trajectory
    from tabom.trajectories.schema import TrajectoryChecker, TrajectoryError

    rows: list[Row] = []
    checker = TrajectoryChecker(path, model.vocab_size)  # what `tabom data inspect --model` checks
    for lineno, item in iter_json_lines(path):
        if isinstance(item, TrajectoryError):
            raise item
        if is_release_line(item):  # the authors' layouts: prompt ids etc. derived with this model
            traj = release_trajectory(item, model, cfg.gen_length, str(path), lineno, cfg.drop_long)
            if traj is None:
                continue
        else:
            traj = checker.check(item, lineno)  # schema, unique id, ids in the model's vocabulary
        if cfg.methods is not None and traj.method not in cfg.methods:
            continue
        if traj.gen_length != cfg.gen_length:
            raise ValueError(
                f"{path}:{lineno}: response_token_ids: has {traj.gen_length} tokens but "
                f"data.gen_length is {cfg.gen_length}"
            )
        if cfg.only_correct and traj.correct is not True:
            continue
        rows.append(Row(tuple(traj.prompt_token_ids), tuple(traj.response_token_ids),
                        tuple(traj.decoding_order)))
    return rows


def _prompt_rows(path: Path, cfg: DataConfig, model: DiffusionLM) -> tuple[list[Row], int]:
    from tabom.tasks.published import is_published_file, sft_objects
    from tabom.trajectories.io import iter_json_lines
    from tabom.trajectories.prompts import parse_prompt

    rows: list[Row] = []
    dropped = 0
    items: Any = iter_json_lines(path)
    if is_published_file(path):  # MixChain-Z-PRM12K / Ling-Coder-SFT as published: their solutions
        items = enumerate(sft_objects(path), start=1)
    for lineno, obj in items:
        if isinstance(obj, ValueError):
            raise obj
        rec = parse_prompt(obj, path=str(path), lineno=lineno)
        if rec.answer is None:
            raise ValueError(f"{path}:{lineno}: answer: required for SFT-GT (format: prompts)")
        response = answer_ids(model, rec.answer, cfg.gen_length)
        if response is None:
            if cfg.drop_long:
                dropped += 1
                continue
            raise ValueError(
                f"{path}:{lineno}: answer: does not fit data.gen_length={cfg.gen_length} with an "
                "EOS (raise gen_length or set data.drop_long: true)"
            )
        rows.append(Row(tuple(model.encode_prompt(rec.prompt)), tuple(response),
                        (-1,) * cfg.gen_length))
    return rows, dropped


def _task_rows(cfg: DataConfig, model: DiffusionLM) -> tuple[list[Row], int]:
    from tabom.tasks import get_family

    problems = get_family(str(cfg.task)).problems(cfg.split, cfg.n, cfg.seed)
    rows: list[Row] = []
    dropped = 0
    for i, problem in enumerate(problems):
        text = problem.reference if cfg.style == "reference" else problem.native
        response = answer_ids(model, text, cfg.gen_length)
        if response is None:
            if cfg.drop_long:
                dropped += 1
                continue
            raise ValueError(
                f"data.task={cfg.task}: problem {i} ({problem.id}): {cfg.style}: "
                f"does not fit data.gen_length={cfg.gen_length} (set data.drop_long: true)"
            )
        rows.append(Row(tuple(model.encode_prompt(problem.prompt)), tuple(response),
                        (-1,) * cfg.gen_length))
    return rows, dropped


def load_rows(cfg: DataConfig, model: DiffusionLM) -> list[Row]:
    """All training rows named by `cfg` (file or task), after `only_correct`/`drop_long`/`limit`."""
    dropped = 0
    if cfg.task is not None:
        rows, dropped = _task_rows(cfg, model)
        where = f"task {cfg.task}"
    else:
        from tabom.tasks.published import is_table_path

        path = Path(str(cfg.path)).expanduser()
        table = cfg.format == "prompts" and path.is_dir() and is_table_path(path)  # a published set's folder
        if path.is_dir() and not table:
            raise ValueError(f"data.path: {path}: is a directory, expected a JSONL file")
        if not path.is_file() and not table:
            raise FileNotFoundError(f"data.path: {path}: no such file")
        if cfg.format == "trajectories":
            rows = _trajectory_rows(path, cfg, model)
        else:
            rows, dropped = _prompt_rows(path, cfg, model)
        where = str(path)
    if dropped:
        log.warning("%s: dropped %d rows whose answer does not fit gen_length=%d", where, dropped, cfg.gen_length)
    if cfg.limit is not None:
        rows = rows[: cfg.limit]
    if not rows:
        raise ValueError(f"{where}: no training rows left (only_correct/drop_long/limit removed all)")
    return rows


def fingerprint_rows(rows: list[Row]) -> str:
    """sha256 (hex) of the rows' ids and steps in order: what a resumed run must train on again."""
    digest = hashlib.sha256()
    for row in rows:
        for part in (row.prompt, row.response, row.steps):
            digest.update(json.dumps(part, separators=(",", ":")).encode())
            digest.update(b";")
        digest.update(b"\n")
    return digest.hexdigest()


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """A permutation of range(n) that depends only on (seed, epoch): identical on every rank."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


def batches_per_epoch(n: int, batch_size: int, world: int) -> int:
    """Micro-batches each rank runs per epoch: ceil(n / (batch_size * world))."""
    return math.ceil(n / (batch_size * world))


def rank_batches(order: list[int], batch_size: int, rank: int, world: int) -> list[list[int]]:
    """This rank's micro-batches of an epoch (row indices).

    Global batch g holds ``order[g*bs*world : (g+1)*bs*world]``, wrapped around to the start of
    the order so every rank gets full batches and all ranks run the same number of steps;
    rank r takes the r-th slice of ``batch_size`` of it.
    Example: order = [0..4], batch_size 2, world 2 -> rank 0: [[0, 1], [4, 0]], rank 1: [[2, 3], [1, 2]].
    """
    n = len(order)
    total = batches_per_epoch(n, batch_size, world)
    out = []
    for g in range(total):
        start = g * batch_size * world + rank * batch_size
        out.append([order[(start + j) % n] for j in range(batch_size)])
    return out


def collate(rows: list[Row], pad_token_id: int, mask_token_id: int) -> ObjectiveBatch:
    """Rows -> an ObjectiveBatch with prompts left-padded so every response ends the row.

    Shapes: input_ids, steps (B, P_max + G) long; attention_mask, response_mask (B, P_max + G)
    bool. Padding has attention False, response False, step -1; prompt positions have step -1.
    Responses of one batch must share G.
    """
    width = max(len(r.prompt) for r in rows)
    gen_length = len(rows[0].response)
    ids, attn, resp, steps = [], [], [], []
    for r in rows:
        if len(r.response) != gen_length:
            raise ValueError(f"collate: responses of {len(r.response)} and {gen_length} tokens in one batch")
        pad = width - len(r.prompt)
        ids.append([pad_token_id] * pad + list(r.prompt) + list(r.response))
        attn.append([False] * pad + [True] * (len(r.prompt) + gen_length))
        resp.append([False] * (pad + len(r.prompt)) + [True] * gen_length)
        steps.append([-1] * (pad + len(r.prompt)) + list(r.steps))
    return ObjectiveBatch(
        input_ids=torch.tensor(ids, dtype=torch.long),  # (B, L)
        attention_mask=torch.tensor(attn, dtype=torch.bool),  # (B, L)
        response_mask=torch.tensor(resp, dtype=torch.bool),  # (B, L)
        steps=torch.tensor(steps, dtype=torch.long),  # (B, L)
        mask_token_id=mask_token_id,
    )


def to_device(batch: ObjectiveBatch, device: torch.device) -> ObjectiveBatch:
    """Move every tensor of the batch to ``device``."""
    return ObjectiveBatch(
        input_ids=batch.input_ids.to(device),
        attention_mask=batch.attention_mask.to(device),
        response_mask=batch.response_mask.to(device),
        steps=batch.steps.to(device),
        mask_token_id=batch.mask_token_id,
    )
