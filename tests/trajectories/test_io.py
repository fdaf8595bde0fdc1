"""Reading, appending, torn-line repair on resume, sharding and merging of trajectory files."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tabom.trajectories.io import (
    TrajectoryWriter,
    existing_ids,
    merge_shards,
    read_trajectories,
    repair_torn_tail,
    shard_path,
)
from tabom.trajectories.schema import Trajectory, TrajectoryError

MakeTraj = Callable[..., Trajectory]


def test_write_then_read_round_trip(tmp_path: Path, make_traj: MakeTraj) -> None:
    path = tmp_path / "sub" / "t.jsonl"
    trajs = [make_traj(f"t{i}", correct=[True, False, None][i]) for i in range(3)]
    with TrajectoryWriter(path) as w:
        w.write(trajs[0])
        w.write_many(trajs[1:])
        w.write_many([])
        assert w.n_written == 3
    assert path.read_text().count("\n") == 3
    assert read_trajectories(path) == trajs


def test_writer_appends(tmp_path: Path, make_traj: MakeTraj) -> None:
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as w:
        w.write(make_traj("a"))
    with TrajectoryWriter(path) as w:
        w.write(make_traj("b"))
    assert [t.id for t in read_trajectories(path)] == ["a", "b"]


def test_writer_outside_context_raises(tmp_path: Path, make_traj: MakeTraj) -> None:
    with pytest.raises(RuntimeError):
        TrajectoryWriter(tmp_path / "t.jsonl").write(make_traj())


def test_read_strict_and_lenient(
    tmp_path: Path, write_lines: Any, traj_obj: dict[str, Any]
) -> None:
    """Lines: 1 good, 2 bad JSON, 3 blank (skipped), 4 bad method, 5 good, 6 duplicate of 1."""
    good2 = dict(traj_obj, id="t1")
    path = write_lines(
        tmp_path / "t.jsonl",
        [traj_obj, "{not json", "", dict(traj_obj, id="t2", method="x"), good2, traj_obj],
    )
    with pytest.raises(TrajectoryError) as info:
        read_trajectories(path)
    assert str(info.value).startswith(f"{path}:2: json: invalid JSON (")
    good, errors = read_trajectories(path, strict=False)
    assert [t.id for t in good] == ["t0", "t1"]
    assert [(e.lineno, e.field) for e in errors] == [(2, "json"), (4, "method"), (6, "id")]
    assert str(errors[2]) == f"{path}:6: id: duplicate id 't0' (first on line 1)"


def test_torn_line_resume(tmp_path: Path, make_traj: MakeTraj, caplog: Any) -> None:
    """Write 2 rows, simulate a kill mid-line, resume: the torn row is cut and rewritten."""
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as w:
        w.write_many([make_traj("a"), make_traj("b")])
    whole = path.stat().st_size
    half = make_traj("c").to_line()[:40]
    with open(path, "a", encoding="utf-8") as f:
        f.write(half)  # killed while writing row "c": no newline
    with caplog.at_level(logging.WARNING):
        done = existing_ids(path)
    assert done == {"a", "b"}
    assert f"{path}:3: torn last line" in caplog.text
    assert path.stat().st_size == whole  # the torn bytes are gone
    with TrajectoryWriter(path) as w:
        w.write_many([make_traj(i) for i in ("a", "b", "c") if i not in done])
    assert [t.id for t in read_trajectories(path)] == ["a", "b", "c"]
    assert path.read_text().endswith("\n")


def test_repair_reports_what_it_cut(
    tmp_path: Path, write_lines: Any, traj_obj: dict[str, Any]
) -> None:
    """Only bytes after the last newline are a torn write; a newline-ended line is never cut."""
    path = write_lines(tmp_path / "t.jsonl", [traj_obj])
    assert repair_torn_tail(path) is None  # nothing torn
    assert repair_torn_tail(tmp_path / "missing.jsonl") is None
    size = path.stat().st_size
    with open(path, "a") as f:
        f.write('{"id": "half", "pro')  # killed mid-write: no newline, not a whole object
    cut = repair_torn_tail(path)
    assert cut is not None and not cut.kept
    assert (cut.lineno, cut.offset, cut.text) == (2, size, '{"id": "half", "pro')
    assert path.stat().st_size == size
    with open(path, "a") as f:
        f.write('{"id": "bad"\n')  # ends in a newline: written whole, so not tabom's to cut
    assert repair_torn_tail(path) is None
    with pytest.raises(TrajectoryError, match=r"t.jsonl:2: json: invalid JSON"):
        existing_ids(path)
    assert path.read_text().endswith('{"id": "bad"\n')  # the error changed nothing


def test_whole_row_without_newline_is_completed_not_cut(tmp_path: Path, make_traj: MakeTraj) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(make_traj("a").to_line() + "\n" + make_traj("b").to_line())
    assert existing_ids(path) == {"a", "b"}
    assert path.read_text() == make_traj("a").to_line() + "\n" + make_traj("b").to_line() + "\n"
    with TrajectoryWriter(path) as w:
        w.write(make_traj("c"))
    assert [t.id for t in read_trajectories(path)] == ["a", "b", "c"]


@pytest.mark.parametrize("raw, field, problem", [
    (b'{"id": "a\xff"}\n', "encoding", "not valid UTF-8 (byte 0xff at column 10)"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "json", "nested too deeply to read"),
])
def test_unreadable_lines_name_file_and_line(
    tmp_path: Path, make_traj: MakeTraj, raw: bytes, field: str, problem: str
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(make_traj("a").to_line().encode() + b"\n" + raw)
    with pytest.raises(TrajectoryError) as info:
        read_trajectories(path)
    assert str(info.value) == f"{path}:2: {field}: {problem}"
    with pytest.raises(TrajectoryError, match=f"t.jsonl:2: {field}"):
        existing_ids(path)


def test_directory_is_not_read_as_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{tmp_path}: is a directory; expected a JSONL file"):
        read_trajectories(tmp_path)


def test_writer_repairs_torn_tail_itself(tmp_path: Path, make_traj: MakeTraj) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(make_traj("a").to_line() + "\n" + '{"id": "b", "pro')
    with TrajectoryWriter(path) as w:
        w.write(make_traj("c"))
    assert [t.id for t in read_trajectories(path)] == ["a", "c"]


def test_existing_ids_rejects_corrupt_middle_line(tmp_path: Path, write_lines: Any) -> None:
    path = write_lines(tmp_path / "t.jsonl", ["{bad", {"id": "a"}])
    with pytest.raises(TrajectoryError, match=r"t.jsonl:1: json: invalid JSON"):
        existing_ids(path)
    path = write_lines(tmp_path / "u.jsonl", [{"id": 5}, {"id": "a"}])
    with pytest.raises(TrajectoryError, match=r"u.jsonl:1: id: missing or not a string"):
        existing_ids(path)
    assert existing_ids(tmp_path / "absent.jsonl") == set()


def test_shard_path() -> None:
    out = Path("runs/t.jsonl")
    assert shard_path(out, 2, 8) == Path("runs/t.shard2-of-8.jsonl")
    assert shard_path(out, 0, 1) == out
    for rank, world in ((3, 3), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            shard_path(out, rank, world)


def _write_shards(out: Path, make_traj: MakeTraj) -> None:
    """Shard 0: a, c; shard 1: b, a (duplicate of a with another prompt); shard 2: d, torn."""
    with TrajectoryWriter(shard_path(out, 0, 3)) as w:
        w.write_many([make_traj("a"), make_traj("c")])
    with TrajectoryWriter(shard_path(out, 1, 3)) as w:
        w.write_many([make_traj("b"), make_traj("a", prompt="dup")])
    with TrajectoryWriter(shard_path(out, 2, 3)) as w:
        w.write(make_traj("d"))
    with open(shard_path(out, 2, 3), "a") as f:
        f.write('{"id": "e", "pr')


def test_merge_shards_order_dedup_and_cleanup(tmp_path: Path, make_traj: MakeTraj) -> None:
    out = tmp_path / "t.jsonl"
    _write_shards(out, make_traj)
    assert merge_shards(out, 3) == 4
    merged = read_trajectories(out)
    assert [t.id for t in merged] == ["a", "c", "b", "d"]  # rank order, file order
    assert merged[0].prompt == "What is 1+1?"  # first "a" (shard 0) wins
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]  # shards and temp gone


def test_merge_shards_deterministic_and_rerun_safe(tmp_path: Path, make_traj: MakeTraj) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for d in (one, two):
        _write_shards(d / "t.jsonl", make_traj)
        merge_shards(d / "t.jsonl", 3)
    first = (one / "t.jsonl").read_bytes()
    assert first == (two / "t.jsonl").read_bytes()
    assert merge_shards(one / "t.jsonl", 3) == 4  # rerun after success: unchanged
    assert (one / "t.jsonl").read_bytes() == first
    # crash after os.replace but before the shards were removed: shards come back
    _write_shards(two / "t.jsonl", make_traj)
    assert merge_shards(two / "t.jsonl", 3) == 4
    assert (two / "t.jsonl").read_bytes() == first


def test_merge_keeps_rows_already_in_out(tmp_path: Path, make_traj: MakeTraj) -> None:
    out = tmp_path / "t.jsonl"
    with TrajectoryWriter(out) as w:
        w.write(make_traj("z"))
    with TrajectoryWriter(shard_path(out, 1, 2)) as w:  # shard 0 missing: counts as empty
        w.write_many([make_traj("y"), make_traj("z")])
    assert merge_shards(out, 2) == 2
    assert [t.id for t in read_trajectories(out)] == ["z", "y"]
    assert merge_shards(out, 1) == 2  # world 1: nothing to merge, rows counted


def test_merge_bad_line_names_file(tmp_path: Path, write_lines: Any) -> None:
    out = tmp_path / "t.jsonl"
    write_lines(shard_path(out, 0, 2), [{"id": "a"}, "[1]", {"id": "b"}])
    with pytest.raises(TrajectoryError) as info:
        merge_shards(out, 2)
    assert str(info.value) == f"{shard_path(out, 0, 2)}:2: id: missing or not a string"
    assert not out.exists()  # nothing half-merged
    assert json.loads(shard_path(out, 0, 2).read_text().splitlines()[0]) == {"id": "a"}
