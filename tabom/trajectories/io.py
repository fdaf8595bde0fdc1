"""Reading, crash-safe appending, resuming and sharding of trajectory JSONL files.

    trajs = read_trajectories("t.jsonl")                     # raises on the first bad line
    trajs, errors = read_trajectories("t.jsonl", strict=False)
    done = existing_ids("t.jsonl")                           # cuts a torn last line first
    with TrajectoryWriter("t.jsonl") as w:                   # append-only
        w.write_many([t for t in batch if t.id not in done]) # one write + flush + fsync

Sharded generation: rank r of W appends to `shard_path(out, r, W)`; afterwards one process calls
`merge_shards(out, W)`, which folds the shards into `out` (existing rows of `out` first, then
shards 0..W-1, each in file order, first occurrence of an id wins), atomically, and removes the
shards. Rerunning it after a crash anywhere in between gives the same file.

A "torn" last line is what a killed writer leaves: no trailing newline, or not valid JSON. The
writer here writes whole lines in one call, so at most the batch in flight is lost, and
`existing_ids` / `TrajectoryWriter` cut a torn tail away (with a logged warning naming file and
line) before anything else is appended.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload

from tabom.trajectories.schema import Trajectory, TrajectoryError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TornLine:
    """A torn last line that was cut away: where it was and what it held."""

    path: str
    lineno: int
    offset: int  # byte offset at which the file was truncated
    text: str  # the dropped bytes, decoded with errors replaced


def iter_json_lines(path: PathLike) -> Iterator[tuple[int, Any | TrajectoryError]]:
    """Yield `(lineno, parsed JSON or TrajectoryError)` for every non-blank line (1-based)."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                yield lineno, TrajectoryError(str(path), lineno, "json", f"invalid JSON ({e.msg})")


@overload
def read_trajectories(path: PathLike, *, strict: Literal[True] = ...) -> list[Trajectory]:
    """strict=True: the trajectories; the first bad line raises `TrajectoryError`."""
@overload
def read_trajectories(
    path: PathLike, *, strict: Literal[False]
) -> tuple[list[Trajectory], list[TrajectoryError]]:
    """strict=False: `(good trajectories, errors)`."""
def read_trajectories(
    path: PathLike, *, strict: bool = True
) -> list[Trajectory] | tuple[list[Trajectory], list[TrajectoryError]]:
    """Read and validate every line of a trajectory file.

    strict=True: return the trajectories, raising `TrajectoryError` at the first bad line.
    strict=False: return `(good trajectories, errors)`; duplicate ids are errors in both modes.
    """
    good: list[Trajectory] = []
    errors: list[TrajectoryError] = []
    first_line: dict[str, int] = {}
    for lineno, item in iter_json_lines(path):
        try:
            if isinstance(item, TrajectoryError):
                raise item
            traj = Trajectory.from_json(item, path=str(path), lineno=lineno)
            if traj.id in first_line:
                first = first_line[traj.id]
                raise TrajectoryError(
                    str(path), lineno, "id", f"duplicate id {traj.id!r} (first on line {first})"
                )
            first_line[traj.id] = lineno
            good.append(traj)
        except TrajectoryError as e:
            if strict:
                raise
            errors.append(e)
    return good if strict else (good, errors)


def repair_torn_tail(path: PathLike) -> TornLine | None:
    """Cut a torn last line (no trailing newline, or invalid JSON) off `path`, in place.

    Returns what was cut, or None when the file is missing, empty or ends in a whole line.
    Logs a warning naming the file and line. Only the last non-blank line is ever cut.
    """
    p = Path(path)
    if not p.exists():
        return None
    with open(p, "rb") as f:
        data = f.read()
    if not data:
        return None
    body = data.rstrip(b"\n")
    start = body.rfind(b"\n") + 1  # start of the last non-blank line
    last = body[start:]
    torn = not data.endswith(b"\n")
    if not torn and last.strip():
        try:
            json.loads(last.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            torn = True
    if not torn:
        return None
    lineno = body[:start].count(b"\n") + 1
    with open(p, "r+b") as f:
        f.truncate(start)
        f.flush()
        os.fsync(f.fileno())
    cut = TornLine(str(p), lineno, start, last.decode("utf-8", errors="replace"))
    logger.warning(
        "%s:%d: torn last line (%d bytes) from an interrupted writer was removed",
        cut.path, cut.lineno, len(data) - start,
    )
    return cut


def existing_ids(path: PathLike) -> set[str]:
    """Ids already in `path` (empty if it does not exist), for resuming generation.

    A torn last line is cut away first (see `repair_torn_tail`), so its id is not counted and
    gets decoded again. Any other line that is not JSON or lacks a string `id` raises
    `TrajectoryError`.
    """
    if not Path(path).exists():
        return set()
    repair_torn_tail(path)
    ids: set[str] = set()
    for lineno, item in iter_json_lines(path):
        if isinstance(item, TrajectoryError):
            raise item
        value = item.get("id") if isinstance(item, dict) else None
        if not isinstance(value, str):
            raise TrajectoryError(str(path), lineno, "id", "missing or not a string")
        ids.add(value)
    return ids


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TrajectoryWriter:
    """Append-only JSONL writer: each batch is one write of whole lines, then flush and fsync.

    Opening repairs a torn tail left by an older, killed writer, so appended lines always start
    on a line of their own. A kill loses at most the batch being written.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.n_written = 0
        self._file: Any = None

    def __enter__(self) -> TrajectoryWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def write(self, traj: Trajectory) -> None:
        """Append one trajectory (a batch of one)."""
        self.write_many([traj])

    def write_many(self, trajs: Iterable[Trajectory]) -> None:
        """Append a batch: serialise all lines first, write them at once, flush, fsync."""
        if self._file is None:
            raise RuntimeError("TrajectoryWriter must be used as a context manager")
        lines = [t.to_line() + "\n" for t in trajs]
        if not lines:
            return
        self._file.write("".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.n_written += len(lines)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def shard_path(out: PathLike, rank: int, world: int) -> Path:
    """File that rank `rank` of `world` writes: `out` itself when world == 1.

    `runs/t.jsonl`, rank 2 of 8 -> `runs/t.shard2-of-8.jsonl`.
    """
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank {rank} of world {world}: need world >= 1 and 0 <= rank < world")
    out = Path(out)
    if world == 1:
        return out
    return out.with_name(f"{out.stem}.shard{rank}-of-{world}{out.suffix}")


def _whole_lines(path: Path) -> Iterator[tuple[int, str, str]]:
    """Yield `(lineno, id, line text without newline)` of a file, torn tail cut first."""
    repair_torn_tail(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            text = line.rstrip("\n")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                problem = f"invalid JSON ({e.msg})"
                raise TrajectoryError(str(path), lineno, "json", problem) from None
            value = obj.get("id") if isinstance(obj, dict) else None
            if not isinstance(value, str):
                raise TrajectoryError(str(path), lineno, "id", "missing or not a string")
            yield lineno, value, text


def merge_shards(out: PathLike, world: int) -> int:
    """Fold the `world` shard files of `out` into `out`; return the number of rows in `out`.

    Order: rows already in `out`, then shard 0, 1, ..., world-1, each in file order; the first
    row with a given id wins. The result is written to a temporary file beside `out`, fsynced,
    and moved over `out` with `os.replace`; the shards are deleted only after that. Missing
    shards count as empty, so rerunning after a crash (or after success) is safe.
    """
    out = Path(out)
    if world == 1:
        return len(existing_ids(out))
    shards = [shard_path(out, r, world) for r in range(world)]
    sources = [p for p in [out, *shards] if p.exists()]
    seen: set[str] = set()
    rows: list[str] = []
    dropped = 0
    for src in sources:
        for _lineno, traj_id, text in _whole_lines(src):
            if traj_id in seen:
                dropped += 1
                continue
            seen.add(traj_id)
            rows.append(text + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.merge-tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(rows))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    _fsync_dir(out.parent)
    for shard in shards:
        shard.unlink(missing_ok=True)
    if dropped:
        logger.info("merge_shards %s: dropped %d rows with an id already seen", out, dropped)
    return len(rows)
