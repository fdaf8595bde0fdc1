"""TDS: the per-step curve by hand, the scalar, and `tabom tds --compare` end to end."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from tabom.eval.tds import tds_curve, tds_scalar

NAN = float("nan")
EOS = 2


def test_tds_curve_by_hand() -> None:
    """B=2 trajectories, S=3 steps, G=4 positions.

    Row 0 decodes [5, EOS, 7, 7]: positions after the first EOS (2, 3) never count.
    Row 1 decodes [5, 6, 7, 8] (no EOS): every position counts.

    step 0: row 0 keeps entropies {1, 3} -> mean 2, population variance 1;
            row 1 keeps {0, 2, 4} -> mean 2, variance (4 + 0 + 4) / 3 = 8/3;
            curve = (1 + 8/3) / 2 = 11/6, 2 rows counted.
    step 1: row 0 keeps only {3} -> skipped (fewer than two); row 1 keeps {1, 5} -> variance 4;
            curve = 4, 1 row counted.
    step 2: row 0 nothing masked, row 1 only {7} -> nobody counts, curve NaN.
    scalar = mean over defined steps = (11/6 + 4) / 2 = 35/12.
    """
    entropy = torch.tensor([
        [[1, 3, 9, 9], [NAN, 3, 9, 9], [NAN, NAN, NAN, NAN]],
        [[0, 2, 4, NAN], [NAN, NAN, 1, 5], [NAN, NAN, NAN, 7]],
    ])
    tokens = torch.tensor([[5, EOS, 7, 7], [5, 6, 7, 8]])
    curve, counts = tds_curve(entropy, tokens, EOS)
    assert counts.tolist() == [2, 1, 0]
    assert curve[0].item() == pytest.approx(11 / 6)
    assert curve[1].item() == pytest.approx(4.0)
    assert math.isnan(curve[2].item())
    assert tds_scalar(curve) == pytest.approx(35 / 12)


def test_tds_uniform_entropy_is_zero_and_eos_position_counts() -> None:
    """Equal entropies give variance 0; the first EOS position itself is kept (only later ones go).

    tokens [EOS, 4, 4]: only position 0 is kept -> fewer than two -> skipped, counts 0.
    tokens [4, EOS, 4]: positions 0, 1 kept with entropies 2, 2 -> variance 0, counted.
    """
    entropy = torch.tensor([[[2.0, 2.0, 9.0]], [[2.0, 2.0, 9.0]]])
    curve, counts = tds_curve(entropy, torch.tensor([[EOS, 4, 4], [4, EOS, 4]]), EOS)
    assert counts.tolist() == [1]
    assert curve.tolist() == [0.0]


def test_tds_curve_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="tds_curve"):
        tds_curve(torch.zeros(2, 3, 4), torch.zeros(2, 5, dtype=torch.long), EOS)


def test_tds_compare_cli_writes_csv_png_and_prints_scalars(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    """Two random tiny models and an adapter on the first: 3 curves of gen_length steps each."""
    from tabom.commands.tds import tds

    app = typer.Typer()
    app.command("tds", context_settings=tds.context_settings)(tds)
    app.command("noop")(lambda: None)  # keeps `tds` a sub-command, as under `tabom`
    out = tmp_path / "tds"
    args = ["tds", "--model", str(tiny_dirs["a"]), "--tasks", "math_chain", "--n", "3", "--gen-length", "8",
            "--device", "cpu", "--out", str(out),
            "--compare", f"base={tiny_dirs['a']}", f"other={tiny_dirs['b']}", f"lora={tiny_dirs['adapter']}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scalars = {line.split()[1]: float(line.split()[2]) for line in result.output.splitlines() if line.startswith("TDS ")}
    assert set(scalars) == {"base", "other", "lora"}
    assert all(v >= 0 for v in scalars.values()), result.output  # NaN (no step with two masked tokens) fails too
    with (out / "tds.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["model"] for r in rows} == {"base", "other", "lora"}
    assert len(rows) == 3 * 8  # gen_length 8, one token per step -> 8 steps per model
    assert all(int(r["count"]) == 3 for r in rows if int(r["step"]) < 7)  # 3 prompts, >= 2 masked left
    assert (out / "tds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tds_batch_size_auto(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    """`tabom tds --batch-size auto`: 1 prompt per batch with 1 MB, all 3 with 100 GB; the curves equal
    those of the same batch given explicitly; --max-memory without auto is refused."""
    import json

    from tabom.commands.tds import tds

    app = typer.Typer()
    app.command("tds", context_settings=tds.context_settings)(tds)
    app.command("noop")(lambda: None)

    def run(name: str, *batch: str) -> tuple[str, str, int]:
        out = tmp_path / name
        args = ["tds", "--model", str(tiny_dirs["a"]), "--tasks", "math_chain", "--n", "3", "--gen-length", "8",
                "--device", "cpu", "--out", str(out), "--batch-size", *batch]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return result.output, (out / "tds.csv").read_text(), json.loads((out / "tds.json").read_text())["model"]["settings"]["batch_size"]

    small, csv_small, batch_small = run("small", "auto", "--max-memory", "1MB")
    large, csv_large, batch_large = run("large", "auto", "--max-memory", "100GB")
    assert "batch size auto: 1 " in small and "batch size auto: 3 " in large
    assert (batch_small, batch_large) == (1, 3)
    assert csv_small == run("one", "1")[1] and csv_large == run("three", "3")[1]
    refused = CliRunner().invoke(app, ["tds", "--model", str(tiny_dirs["a"]), "--tasks", "math_chain", "--n", "3",
                                       "--out", str(tmp_path / "bad"), "--batch-size", "8", "--max-memory", "1GB"])
    assert isinstance(refused.exception, ValueError) and "only with --batch-size auto" in str(refused.exception)
    assert not (tmp_path / "bad").exists()
