"""Decoding memory: the size formula, --batch-size auto and --max-memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tabom.eval.decode_memory import (
    DREAM_7B, UNCHUNKED_LOGIT_BYTES, auto_batch_size, decode_bytes, memory_table, parse_batch_size, parse_memory,
)


def test_parse_sizes_and_batch() -> None:
    assert parse_memory("40GB") == 40e9 and parse_memory("512MiB") == 512 * 2**20 and parse_memory("2e9") == 2e9
    with pytest.raises(ValueError, match="--max-memory: 'lots' is not a size"):
        parse_memory("lots")
    assert parse_batch_size("16", None) == 16 and parse_batch_size("auto", "10GB") is None
    with pytest.raises(ValueError, match="--max-memory: only with --batch-size auto"):
        parse_batch_size("16", "10GB")
    with pytest.raises(ValueError, match="--batch-size: expected a positive integer or 'auto', got '0'"):
        parse_batch_size("0", None)


def test_whole_step_logits_grow_with_the_batch_chunked_do_not() -> None:
    """Dream-7B, 256 masked positions: the whole-step work adds 16 B x 64 x 256 x 152,064 = 39.9 GB at batch 64."""
    whole = decode_bytes(DREAM_7B, batch=64, prompt=0, gen=256, chunked=False)
    chunked = decode_bytes(DREAM_7B, batch=64, prompt=0, gen=256)
    assert whole - chunked == pytest.approx(UNCHUNKED_LOGIT_BYTES * 64 * 256 * 152064 - 16.0 * (1 << 24))
    assert chunked < 0.2 * whole
    assert "| 64 |" in memory_table(DREAM_7B, (1, 64), (256,))


def test_auto_batch_is_the_largest_that_fits() -> None:
    budget = decode_bytes(DREAM_7B, batch=20, prompt=300, gen=512)
    assert auto_batch_size(DREAM_7B, prompt=300, gen=512, budget=budget) == 20
    assert auto_batch_size(DREAM_7B, prompt=300, gen=512, budget=budget - 1) == 19
    assert auto_batch_size(DREAM_7B, prompt=300, gen=512, budget=1.0) == 1
    assert auto_batch_size(DREAM_7B, prompt=300, gen=512, budget=1e15, limit=7) == 7


def test_eval_batch_size_auto(tmp_path: Path) -> None:
    """`tabom eval --batch-size auto`: all 3 problems in one batch with room, one per batch with 1 MB."""
    data = tmp_path / "gsm.jsonl"
    data.write_text("".join(json.dumps({"question": f"{a}+1?", "answer": f"#### {a + 1}"}) + "\n" for a in range(3)))
    for memory, want in (("100GB", 3), ("1MB", 1)):
        out = tmp_path / memory
        proc = subprocess.run([sys.executable, "-m", "tabom.cli", "eval", "--model", "tiny", "--tasks", f"gsm8k={data}",
                               "--gen-length", "8", "--steps", "8", "--batch-size", "auto", "--max-memory", memory,
                               "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"batch size auto: {want} " in proc.stdout
        assert json.loads((out / "results.json").read_text())["settings"]["batch_size"] == want
