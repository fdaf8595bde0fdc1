"""Output files that survive faults: checked before work starts, written atomically, locked.

    check_output_file("runs/t.jsonl")          # ValueError now, not a traceback after hours of work
    check_output_dir("runs/eval/x")            # a folder that exists or can be created, writable
    write_text_atomic(path, text)              # temp file beside it, fsync, os.replace
    with exclusive_lock("runs/t.jsonl.lock"):  # a second holder gets a ValueError naming the file
        ...

`exclusive_lock` uses `fcntl.flock` (released by the kernel when a process dies, even by
kill -9); the lock file is removed on a clean exit, and a holder checks after locking that the
file it locked is still the one at the path, so removing it cannot let two holders in.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]


def _first_existing(path: Path) -> Path:
    """`path` or its nearest ancestor that exists (the folder a mkdir -p would start from)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_creatable_dir(folder: Path, what: str, target: Path) -> None:
    """Raise ValueError unless `folder` is a writable directory or could be created as one."""
    base = _first_existing(folder)
    if not base.is_dir():
        raise ValueError(f"{what}: {base} is not a directory, so {target} cannot be created")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: {target} cannot be created: {base} is not writable")


def check_output_file(path: PathLike, *, what: str = "--out") -> None:
    """Refuse an output file that cannot be written: a directory, a device or other non-regular
    file, a read-only file, or a parent folder that cannot be created or written.

    Raises `ValueError` naming `what` and the path; creates nothing.
    """
    p = Path(path)
    if p.exists() or p.is_symlink():
        if p.is_dir():
            raise ValueError(f"{what}: {p} is a directory; give a file path")
        if not p.is_file():
            raise ValueError(f"{what}: {p} is not a regular file")
        if not os.access(p, os.W_OK):
            raise ValueError(f"{what}: {p} is not writable")
    _check_creatable_dir(p.parent, what, p)


def check_output_dir(path: PathLike, *, what: str = "--out") -> None:
    """Refuse an output folder that is a file, or that cannot be created or written.

    Raises `ValueError` naming `what` and the path; creates nothing.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what}: {p} exists and is not a directory")
    _check_creatable_dir(p, what, p)


def fsync_dir(directory: PathLike) -> None:
    """fsync a directory so a rename inside it survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to a temporary file beside `path`, fsync it, and move it over `path`.

    A reader sees the old file or the new one, never a part; a crash leaves at most the
    temporary `.NAME.tmp` behind. Returns `path` as a Path.
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    fsync_dir(p.parent)
    return p


def lock_path(path: PathLike) -> Path:
    """The lock file guarding an output: `t.jsonl` -> `t.jsonl.lock`."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


@contextmanager
def exclusive_lock(path: PathLike, *, what: str) -> Iterator[Path]:
    """Hold an exclusive `flock` on the file `path` (created if needed) for the block.

    Raises `ValueError` (`what` names the output the lock guards) when another process holds it.
    The file is removed when the block ends.
    """
    import fcntl

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        try:
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ValueError(f"{what}: cannot create the lock file {p}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(f"{what}: another process is writing it (it holds {p}); "
                                 "wait for it to finish or give another path") from None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(p).st_ino
        except FileNotFoundError:  # removed by the holder that just finished
            same = False
        if same:
            break
        os.close(fd)  # locked a file already unlinked by the previous holder: take the new one
    else:
        raise ValueError(f"{what}: could not lock {p}: it keeps being replaced")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield p
    finally:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        os.close(fd)


class JsonlLog:
    """A JSONL file written as work proceeds: each `write` appends whole lines, flushes, fsyncs.

    Used as a context manager; the file (and its folder) is created, empty, at the first
    `write`, so a run that fails before producing anything leaves nothing behind. A crash keeps
    every line written before it.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._file: Any = None

    def __enter__(self) -> JsonlLog:
        return self

    def write(self, records: Iterable[Any]) -> None:
        """Append one JSON line per record in one write, then flush and fsync."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")
        if text:
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
