"""Hostile input and faults for `tabom generate` (issue 19): what is already on disk is never lost,
a file that is not tabom's is never touched, bad input is one `error: FILE:LINE: ...` line.

The CLI runs in-process through typer's CliRunner (there an expected error is `res.exception`, a
ValueError, which `tabom.cli.main` prints as `error: ...` with exit 2: one subprocess test checks
that path). Model: a saved 2-layer random tiny model; gen_length 8, one or two prompts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from tabom.cli import app
from tabom.models import build_tiny, load, save
from tabom.outputs import exclusive_lock, lock_path
from tabom.trajectories import read_trajectories
from tabom.trajectories.builder import BuildConfig, build_trajectories, file_jobs, meta_path
from tabom.trajectories.distributed import DistEnv

torch.set_num_threads(1)
SHAPE: dict[str, int] = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                         "num_key_value_heads": 2, "intermediate_size": 64}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(build_tiny(seed=0, **SHAPE), tmp_path_factory.mktemp("tiny") / "model")


def gen(model_dir: Path, out: Path, *extra: str) -> Any:
    """`tabom generate` on the test model, gen_length 8, every row kept."""
    args = ["generate", "--model", str(model_dir), "--out", str(out), "--gen-length", "8", "--keep", "all",
            "--batch-size", "2", "--no-progress", *extra]
    return CliRunner().invoke(app, args)


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts)))
    return path


def failed_with(res: Any, message: str) -> bool:
    return isinstance(res.exception, ValueError) and message in str(res.exception)


# ----------------------------------------------------------------- item 1: only tabom's file is touched
def test_a_foreign_file_is_refused_and_left_byte_for_byte(model_dir: Path, tmp_path: Path) -> None:
    """`printf 'a\\nb\\nc' > notes.txt; tabom generate --out notes.txt` used to cut a line per run."""
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"a\nb\nc")
    for _ in range(2):
        res = gen(model_dir, notes, "--task", "math_chain", "--n", "1")
        assert failed_with(res, f"--out: {notes} exists but has no notes.txt.meta.json beside it")
    assert notes.read_bytes() == b"a\nb\nc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no sidecar, lock or log left


def test_a_sidecar_tabom_did_not_write_is_refused(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    out.write_text('{"id": "x"}\n')
    meta_path(out).write_text('{"note": "mine"}\n')
    res = gen(model_dir, out, "--task", "math_chain", "--n", "1")
    assert failed_with(res, f"{meta_path(out)}: not a sidecar written by `tabom generate`")
    assert out.read_text() == '{"id": "x"}\n'


def test_a_whole_last_row_without_its_newline_is_kept(model_dir: Path, tmp_path: Path) -> None:
    """The last row lost only its newline: the rerun completes it and decodes nothing again."""
    out = tmp_path / "t.jsonl"
    assert gen(model_dir, out, "--task", "math_chain", "--n", "2").exit_code == 0
    whole = out.read_bytes()
    out.write_bytes(whole.rstrip(b"\n"))
    res = gen(model_dir, out, "--task", "math_chain", "--n", "2")
    assert res.exit_code == 0, res.output
    assert "decoded 0 on rank 0" in res.output
    assert out.read_bytes() == whole


def test_a_torn_write_is_cut_and_decoded_again(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    assert gen(model_dir, out, "--task", "math_chain", "--n", "2").exit_code == 0
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    out.write_bytes(lines[0] + lines[1][:25])  # killed in the middle of the second row
    res = gen(model_dir, out, "--task", "math_chain", "--n", "2")
    assert res.exit_code == 0 and "decoded 1 on rank 0" in res.output
    assert out.read_bytes() == whole


def test_a_corrupt_whole_line_is_an_error_and_nothing_changes(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    assert gen(model_dir, out, "--task", "math_chain", "--n", "2").exit_code == 0
    lines = out.read_bytes().splitlines(keepends=True)
    broken = b'{"id": oops}\n' + lines[1][:30]
    out.write_bytes(broken)
    res = gen(model_dir, out, "--task", "math_chain", "--n", "2")
    assert failed_with(res, f"{out}:1: json: invalid JSON")
    assert out.read_bytes() == broken  # not even the torn tail was cut


# ----------------------------------------------------- item 2: one writer; --out is not --prompts
def test_a_second_writer_on_the_same_out_is_refused(model_dir: Path, tmp_path: Path) -> None:
    """While one build is between batches, another on the same --out fails; every row once."""
    prompts = write_prompts(tmp_path / "p.jsonl", ["a", "bb", "ccc", "dddd"])
    out = tmp_path / "t.jsonl"
    lm = load(model_dir)
    cfg = BuildConfig(gen_length=8, batch_size=2, verify="none", keep="all")
    errors: list[str] = []

    def second(batch: int, kept: list[Any]) -> None:
        if batch == 0:
            with pytest.raises(ValueError) as info:
                build_trajectories(lm, file_jobs(prompts), out, cfg, env=DistEnv())
            errors.append(str(info.value))

    build_trajectories(lm, file_jobs(prompts), out, cfg, env=DistEnv(), on_batch=second)
    assert errors == [f"--out {out}: another process is writing it (it holds {lock_path(out)}); "
                      "wait for it to finish or give another path"]
    assert [t.id for t in read_trajectories(out)] == ["q0", "q1", "q2", "q3"]
    assert not lock_path(out).exists()  # removed on a clean exit


def test_the_cli_refuses_an_out_that_is_locked(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    with exclusive_lock(lock_path(out), what="test"):
        res = gen(model_dir, out, "--task", "math_chain", "--n", "1")
    assert failed_with(res, "another process is writing it")
    assert not out.exists() and not meta_path(out).exists()


@pytest.mark.parametrize("how", ["same", "dot", "symlink", "hardlink"])
def test_out_equal_to_prompts_is_refused(model_dir: Path, tmp_path: Path, how: str) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", ["a"])
    before = prompts.read_bytes()
    out = {"same": prompts, "dot": tmp_path / "." / "p.jsonl", "symlink": tmp_path / "s.jsonl",
           "hardlink": tmp_path / "h.jsonl"}[how]
    if how == "symlink":
        out.symlink_to(prompts)
    if how == "hardlink":
        os.link(prompts, out)
    res = gen(model_dir, out, "--prompts", str(prompts))
    assert failed_with(res, f"is the --prompts file {prompts}; give another --out")
    assert prompts.read_bytes() == before and not meta_path(out).exists()


# ---------------------------------------------------- item 3: settings checked before files exist
@pytest.mark.parametrize("flags, message", [
    (["--block-length", "5"], "block_length: gen_length 8 is not a multiple of block_length 5"),
    (["--temperature", "nan"], "temperature: must be a finite number >= 0, got nan"),
    (["--steps", "3", "--block-length", "4"], "steps: 3 is not a multiple of the number of blocks 2"),
])
def test_a_rejected_setting_creates_nothing_and_the_fixed_rerun_works(
    model_dir: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "t.jsonl"
    res = gen(model_dir, out, "--task", "math_chain", "--n", "1", *flags)
    assert failed_with(res, message)
    assert list(tmp_path.iterdir()) == []
    ok = gen(model_dir, out, "--task", "math_chain", "--n", "1")
    assert ok.exit_code == 0, ok.output
    assert len(read_trajectories(out)) == 1


def test_a_sidecar_beside_no_rows_does_not_block_other_settings(model_dir: Path, tmp_path: Path) -> None:
    """An older version left `t.jsonl.meta.json` (status running) and an empty file behind."""
    out = tmp_path / "t.jsonl"
    out.write_text("")
    meta_path(out).write_text(json.dumps({"model": "x", "settings": {"block_length": 5}, "status": "running"}))
    res = gen(model_dir, out, "--task", "math_chain", "--n", "1")
    assert res.exit_code == 0, res.output
    assert json.loads(meta_path(out).read_text())["settings"]["block_length"] is None


# ------------------------------------------------------------------- item 5: unreadable prompt files
@pytest.mark.parametrize("raw, message", [
    (b'{"prompt": "ok"}\n{"prompt": "\xff"}\n', "{p}:2: encoding: not valid UTF-8 (byte 0xff at column 13)"),
    (b'{"prompt": "ok"}\n' + b"[" * 50_000 + b"]" * 50_000 + b"\n", "{p}:2: json: nested too deeply to read"),
    (b'{"prompt": "ok"}\n' + json.dumps({"prompt": "x" * 600}).encode() + b"\n",
     "{p}:2: prompt: 602 tokens + gen_length 8 = 610 exceed the 512 positions of model"),
])
def test_bad_prompt_files_name_file_and_line(model_dir: Path, tmp_path: Path, raw: bytes, message: str) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_bytes(raw)
    out = tmp_path / "out" / "t.jsonl"
    res = gen(model_dir, out, "--prompts", str(prompts))
    assert failed_with(res, message.format(p=prompts))
    assert not (tmp_path / "out").exists()  # refused before anything was created


def test_a_prompt_too_long_for_a_task_names_the_problem(model_dir: Path, tmp_path: Path) -> None:
    res = gen(model_dir, tmp_path / "t.jsonl", "--task", "math_chain", "--n", "1", "--gen-length", "510")
    assert failed_with(res, "task math_chain (train) problem ")
    assert "exceed the 512 positions" in str(res.exception) and list(tmp_path.iterdir()) == []


def test_directories_are_named(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    res = gen(model_dir, tmp_path / "t.jsonl", "--prompts", str(tmp_path / "d"))
    assert failed_with(res, f"{tmp_path / 'd'}: is a directory; expected a JSONL file")
    res = gen(model_dir, tmp_path / "d", "--task", "math_chain", "--n", "1")
    assert failed_with(res, f"--out: {tmp_path / 'd'} is a directory; give a file path")
    (tmp_path / "f").write_text("")
    res = gen(model_dir, tmp_path / "f" / "t.jsonl", "--task", "math_chain", "--n", "1")
    assert failed_with(res, f"--out: {tmp_path / 'f'} is not a directory, so {tmp_path / 'f' / 't.jsonl'} cannot")


def test_the_console_entry_prints_one_error_line_and_exits_2(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"a\nb\nc")
    cmd = [sys.executable, "-c", "from tabom.cli import main; main()", "generate", "--task", "math_chain",
           "--n", "1", "--out", str(notes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"error: --out: {notes} exists but has no notes.txt.meta.json" in proc.stderr
    assert "Traceback" not in proc.stderr and notes.read_bytes() == b"a\nb\nc"
