"""Reading, crash-safe appending, resuming and sharding of trajectory JSONL files.

    trajs = read_trajectories("t.jsonl")                     # raises on the first bad line
    trajs, errors = read_trajectories("t.jsonl", strict=False)
    done = existing_ids("t.jsonl")                           # repairs a torn tail first
    with TrajectoryWriter("t.jsonl") as w:                   # append-only
        w.write_many([t for t in batch if t.id not in done]) # one write + flush + fsync

Sharded generation: rank r of W appends to `shard_path(out, r, W)`; afterwards one process calls
`merge_shards(out, W)`, which folds the shards into `out` (existing rows of `out` first, then
shards 0..W-1, each in file order, first occurrence of an id wins), atomically, and removes the
shards. Rerunning it after a crash anywhere in between gives the same file.

Framing: tabom writes whole lines, each ending in a newline, in one write call, so a kill
loses at most the batch in flight and leaves at most some bytes after the last newline.
`existing_ids` first checks every whole line (read-only; a bad one is a `TrajectoryError`
naming FILE:LINE and nothing is touched), then `repair_torn_tail` deals with those bytes: a
whole JSON row that only lost its newline is completed and kept, anything else is cut (with a
logged warning naming file and line). Lines ending in a newline are never changed. Whether a
file may be repaired at all (is it tabom's, for the same job?) is the caller's check:
`tabom generate` refuses an `--out` without its sidecar (`builder.py`).

Reading names the file and line for every kind of bad line: not UTF-8, not JSON, nested too
deeply; a directory given as a file is a `ValueError`, a missing one `FileNotFoundError`.
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

from tabom.outputs import write_text_atomic
from tabom.trajectories.schema import Trajectory, TrajectoryError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TornLine:
    """The bytes after the last newline of a file, and what was done with them."""

    path: str
    lineno: int
    offset: int  # byte offset where the unterminated line starts
    text: str  # its bytes, decoded with errors replaced
    kept: bool = False  # True: a whole JSON object that only lacked its newline, completed in place


def _check_is_file(path: PathLike) -> None:
    """FileNotFoundError for a missing path, ValueError for a directory or other non-file."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: is a directory; expected a JSONL file")
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    if not p.is_file():
        raise ValueError(f"{p}: is not a regular file; expected a JSONL file")


def _parse_line(raw: bytes, path: str, lineno: int) -> Any:
    """One raw line -> its JSON value, a `TrajectoryError` naming FILE:LINE, or None when blank."""
    try:
        text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as e:
        problem = f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
        return TrajectoryError(path, lineno, "encoding", problem)
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        return TrajectoryError(path, lineno, "json", f"invalid JSON ({e.msg})")
    except RecursionError:
        return TrajectoryError(path, lineno, "json", "nested too deeply to read")


def _raw_lines(path: PathLike) -> Iterator[tuple[int, bytes, bool]]:
    """Yield `(lineno, bytes, ends_with_newline)` for every line of a file (1-based)."""
    _check_is_file(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            yield lineno, raw, raw.endswith(b"\n")


def iter_json_lines(path: PathLike) -> Iterator[tuple[int, Any | TrajectoryError]]:
    """Yield `(lineno, parsed JSON or TrajectoryError)` for every non-blank line (1-based).

    A line that is not UTF-8, not JSON or nested too deeply gives a `TrajectoryError` naming the
    file and line; a directory or other non-file raises `ValueError`, a missing file
    `FileNotFoundError`.
    """
    for lineno, raw, _ in _raw_lines(path):
        item = _parse_line(raw, str(path), lineno)
        if item is not None:
            yield lineno, item


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


def _tail_offset(f: Any, size: int, chunk: int = 1 << 16) -> int:
    """Byte offset just after the last newline of an open binary file of `size` bytes (0: none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        f.seek(start)
        pos = f.read(end - start).rfind(b"\n")
        if pos >= 0:
            return start + pos + 1
        end = start
    return 0


def repair_torn_tail(path: PathLike) -> TornLine | None:
    """Deal with the bytes after the last newline of `path`, in place; say what was done.

    tabom writes whole lines, each ending in a newline, so bytes after the last one are a write
    cut short by a kill. When they hold a whole JSON object (only the newline was lost) the
    newline is appended and the row kept; otherwise they are cut off. Lines that end in a
    newline are never touched, whatever they hold (a bad one is an error for the reader).
    Returns None when the file is missing, empty or ends in a newline; logs a warning naming
    the file and line otherwise. Call it only on a file tabom writes (`tabom generate` checks
    the sidecar first).
    """
    p = Path(path)
    if not p.is_file():
        return None
    with open(p, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = _tail_offset(f, size)
        if start == size:
            return None
        f.seek(start)
        tail = f.read()
        f.seek(0)
        lineno = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b"")) + 1
    kept = isinstance(_parse_line(tail, str(p), lineno), dict)
    with open(p, "r+b") as f:
        if kept:
            f.seek(size)
            f.write(b"\n")
        else:
            f.truncate(start)
        f.flush()
        os.fsync(f.fileno())
    torn = TornLine(str(p), lineno, start, tail.decode("utf-8", errors="replace"), kept)
    if kept:
        logger.warning("%s:%d: last row lacked its newline (an interrupted writer); completed and kept",
                       torn.path, torn.lineno)
    else:
        logger.warning("%s:%d: torn last line (%d bytes) from an interrupted writer was removed",
                       torn.path, torn.lineno, size - start)
    return torn


def _ids_of_whole_lines(path: PathLike) -> Iterator[tuple[int, str, bytes]]:
    """Yield `(lineno, id, raw line)` of every newline-terminated, non-blank line; read-only.

    A line that is not a JSON object with a string `id` raises `TrajectoryError`. The bytes
    after the last newline (see `repair_torn_tail`) are not looked at.
    """
    for lineno, raw, whole in _raw_lines(path):
        if not whole:
            break
        item = _parse_line(raw, str(path), lineno)
        if item is None:
            continue
        if isinstance(item, TrajectoryError):
            raise item
        value = item.get("id") if isinstance(item, dict) else None
        if not isinstance(value, str):
            raise TrajectoryError(str(path), lineno, "id", "missing or not a string")
        yield lineno, value, raw


def existing_ids(path: PathLike) -> set[str]:
    """Ids already in `path` (empty if it does not exist), for resuming generation.

    Every whole line is checked first, read-only: one that is not JSON or lacks a string `id`
    raises `TrajectoryError` and nothing is changed. Then the tail is repaired (see
    `repair_torn_tail`): a row that only lacked its newline is kept and counted; a torn write
    is cut, so its id is decoded again.
    """
    if not Path(path).exists():
        return set()
    ids = [traj_id for _lineno, traj_id, _raw in _ids_of_whole_lines(path)]
    torn = repair_torn_tail(path)
    if torn is not None and torn.kept:
        ids = [traj_id for _lineno, traj_id, _raw in _ids_of_whole_lines(path)]
    return set(ids)


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
        repair_torn_tail(src)
        for _lineno, traj_id, raw in _ids_of_whole_lines(src):
            if traj_id in seen:
                dropped += 1
                continue
            seen.add(traj_id)
            rows.append(raw.decode("utf-8"))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(rows))
    for shard in shards:
        shard.unlink(missing_ok=True)
    if dropped:
        logger.info("merge_shards %s: dropped %d rows with an id already seen", out, dropped)
    return len(rows)
