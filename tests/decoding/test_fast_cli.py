"""Fast-decoding options on the command line: every command takes them, bad values are one error line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from tabom.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


BAD = [
    (["--threshold", "0"], "error: threshold: must be in (0, 1], got 0.0"),
    (["--threshold", "1.5"], "error: threshold: must be in (0, 1], got 1.5"),
    (["--cache", "dual"], "error: cache: dual needs a block length (--block-length)"),
    (["--cache", "full"], "error: cache: 'full' is not one of none, prefix, dual"),
]


CASES = [("eval", a, m) for a, m in BAD] + [("generate", *BAD[2]), ("tds", *BAD[0])]


@pytest.mark.parametrize("verb, args, message", CASES)
def test_bad_fast_options_are_one_error_line_and_nothing_written(tmp_path, verb, args, message):
    out = tmp_path / "out"
    where = {"eval": ["--tasks", "math_chain"], "generate": ["--task", "math_chain"], "tds": ["--tasks", "math_chain"]}
    res = run(verb, "--model", "tiny", *where[verb], "--out", str(out), *args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1] == message or message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not out.exists()


def test_generate_records_threshold_and_cache_in_every_row(tmp_path):
    out = tmp_path / "t.jsonl"
    res = run("generate", "--model", "tiny", "--task", "math_chain", "--n", "3", "--keep", "all",
              "--block-length", "8", "--threshold", "0.9", "--cache", "dual", "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert row["settings"]["threshold"] == 0.9 and row["settings"]["cache"] == "dual"
        assert min(row["decoding_order"]) == 0
    # several positions unmasked in one step somewhere (the trained model is sure of its EOS tail)
    assert any(len(set(r["decoding_order"])) < len(r["decoding_order"]) for r in rows)
