"""Sharding and resuming `tabom generate`: the process layout and the files that record progress.

Under `torchrun` or `accelerate launch` every process reads RANK / WORLD_SIZE / LOCAL_RANK; a
plain `python` run is rank 0 of 1. Rank r decodes every world-th prompt still to do, writes
`shard_path(out, r, world)`, and after a barrier rank 0 folds the shards into `out`:

    env = DistEnv.from_environ()
    done = resume_ids(out, env)            # ids already written or rejected, in any file
    ...                                    # decode jobs[env.rank::env.world], append to the shard
    finish_shards(out, env)                # barrier; rank 0 merges shards and rejection logs
    env.close()

A process group is only created when a barrier is needed (world > 1): gloo on CPU, nccl on GPU.

Rows that were decoded but not kept (`--keep correct` and a wrong answer) are recorded in a
rejection log beside the file they would have gone to (`t.jsonl.rejected`, one JSON object per
line: `{"id": ..., "data_source": ..., "correct": false}`), so a rerun skips them too and the
yield counts survive restarts. A torn last line of a rejection log is ignored (its row is
decoded again).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tabom.outputs import write_text_atomic
from tabom.trajectories.io import (
    PathLike, existing_ids, iter_json_lines, merge_shards, repair_torn_tail, shard_path,
)
from tabom.trajectories.schema import TrajectoryError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits among the generating processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        """Read RANK, WORLD_SIZE and LOCAL_RANK (torchrun / accelerate); absent -> rank 0 of 1."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for key, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
            raw = env.get(key, str(default))
            try:
                values[key] = int(raw)
            except ValueError:
                raise ValueError(f"environment: {key}: expected an int, got {raw!r}") from None
        rank, world = values["RANK"], values["WORLD_SIZE"]
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"environment: RANK={rank} WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
        return cls(rank=rank, world=world, local_rank=values["LOCAL_RANK"])

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    def device(self) -> torch.device:
        """cuda:LOCAL_RANK when CUDA is available, else the CPU."""
        if torch.cuda.is_available():
            return torch.device(f"cuda:{self.local_rank}")
        return torch.device("cpu")

    def barrier(self) -> None:
        """Wait for every rank; creates the process group on first use (no-op for world 1)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(self.local_rank)
            dist.init_process_group(backend=backend, rank=self.rank, world_size=self.world)
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if this module created one."""
        if self.world == 1:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------------------------- rejection logs
def rejected_path(path: PathLike) -> Path:
    """The rejection log of a trajectory file: `t.jsonl` -> `t.jsonl.rejected`."""
    p = Path(path)
    return p.with_name(p.name + ".rejected")


def read_rejected(path: PathLike) -> dict[str, dict[str, Any]]:
    """id -> record of a rejection log (empty when missing); a torn last line is skipped.

    Any other bad line raises `ValueError` naming the file and line.
    """
    p = Path(path)
    if not p.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for lineno, obj in iter_json_lines(p):
        if isinstance(obj, TrajectoryError):
            if obj.lineno == _last_unterminated_line(p):  # cut short by a kill: decode it again
                continue
            raise obj
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise ValueError(f"{p}:{lineno}: id: missing or not a string")
        out.setdefault(obj["id"], obj)
    return out


def _last_unterminated_line(p: Path) -> int:
    """Line number of bytes after the last newline of `p`, or 0 when it ends in a newline."""
    data = p.read_bytes()
    return 0 if not data or data.endswith(b"\n") else data.count(b"\n") + 1


def append_rejected(path: PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Append records (each with a string `id`) as whole lines: one write, flush, fsync.

    A torn tail of the log is repaired first (`repair_torn_tail`), so records start on a line of
    their own and a whole record that only lost its newline is kept.
    """
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not text:
        return
    p = rejected_path(path)
    repair_torn_tail(p)
    with open(p, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def merge_rejected(out: PathLike, world: int) -> None:
    """Fold the shards' rejection logs into `out`'s (first record of an id wins), then delete them."""
    if world == 1:
        return
    shards = [rejected_path(shard_path(out, r, world)) for r in range(world)]
    if not any(s.exists() for s in shards):
        return
    merged: dict[str, dict[str, Any]] = {}
    for src in [rejected_path(out), *shards]:
        for key, rec in read_rejected(src).items():
            merged.setdefault(key, rec)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in merged.values())
    write_text_atomic(rejected_path(out), text)
    for s in shards:
        s.unlink(missing_ok=True)


# ------------------------------------------------------------------------- resume and merge
def leftover_worlds(out: PathLike) -> list[int]:
    """World sizes of shard files (trajectories or rejection logs) lying beside `out`."""
    out = Path(out)
    name = re.escape(out.stem) + r"\.shard(\d+)-of-(\d+)" + re.escape(out.suffix)
    pattern = re.compile(name + r"(\.rejected)?$")
    worlds: set[int] = set()
    if out.parent.is_dir():
        for p in out.parent.iterdir():
            m = pattern.match(p.name)
            if m:
                worlds.add(int(m.group(2)))
    return sorted(worlds)


def resume_ids(out: PathLike, env: DistEnv) -> set[str]:
    """Ids that need no decoding: rows in `out` or any shard, and rejected ids. Collective.

    1. rank 0 folds shards of other world sizes (an earlier run launched differently) into `out`;
       every rank cuts a torn tail off its own shard;
    2. barrier; every rank reads the same files, so all get the same set;
    3. barrier, so no rank appends to a shard another is still reading.
    """
    out = Path(out)
    if env.is_main:
        for w in leftover_worlds(out):
            if w != env.world:
                merge_shards(out, w)
                merge_rejected(out, w)
        existing_ids(out)
    existing_ids(shard_path(out, env.rank, env.world))
    env.barrier()
    done = existing_ids(out) | set(read_rejected(rejected_path(out)))
    if env.world > 1:
        for r in range(env.world):
            shard = shard_path(out, r, env.world)
            done |= existing_ids(shard) | set(read_rejected(rejected_path(shard)))
    env.barrier()
    return done


def finish_shards(out: PathLike, env: DistEnv) -> None:
    """Barrier, then rank 0 folds every shard and shard rejection log into `out`. Collective."""
    env.barrier()
    if env.is_main and env.world > 1:
        merge_shards(out, env.world)
        merge_rejected(out, env.world)
