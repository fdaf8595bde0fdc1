"""The `tabom` entry point: light import, every verb registered, bad input -> one error line, exit 2."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from tabom.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120)


def test_every_verb_is_registered() -> None:
    out = run("--help").stdout
    for verb in ("pretrain", "eval", "data", "generate", "train", "tds", "lm-eval", "reproduce"):
        assert verb in out, verb


def test_bad_prompt_file_names_file_line_and_field(tmp_path) -> None:
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"id": "a", "prompt": "1+1?"}\n{"id": "b"}\n')
    res = run("generate", "--model", "tiny", "--prompts", str(bad), "--out", str(tmp_path / "t.jsonl"))
    assert res.returncode == 2
    assert f"error: {bad}:2: prompt:" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "t.jsonl").exists()


def test_missing_model_folder_is_a_clear_error(tmp_path) -> None:
    res = run("eval", "--model", str(tmp_path / "nope"))
    assert res.returncode == 2 and "never downloads" in res.stderr
