"""The "from a real checkpoint" walkthrough of `docs/real_checkpoints.md`, run line by line.

The test reads the two `bash` blocks of the doc's Walkthrough section (Dream, LLaDA), puts the
path of a tiny random checkpoint in the ORIGINAL on-disk layout (`tests/models/checkpoint_builders.py`:
Dream sharded, LLaDA in one file, both with `modeling_*.py` files that raise on import) in place
of `/ckpt/...`, appends flags that shrink the run (later flags win: 16 response tokens in 16
steps, 2 optimizer steps, 3 TDS prompts) and runs each line through `tabom.cli.app` in a scratch
folder holding `data/prm12k_prompts.jsonl` and `data/gsm8k/test.jsonl`. `torchrun` and
`accelerate launch` lines run without their launcher; training ones as `--dry-run`.

A random stand-in model answers wrongly, so `--keep correct` (the documented default) would keep
no trajectory and leave nothing to train on: the test appends `--keep all` to `generate`. It
also raises the learning rate to 1e-2 so that two steps move LoRA B away from its zero init and
the TABOM adapter measurably changes the model (checked through its TDS).
"""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

if str(Path(__file__).parent / "models") not in sys.path:  # where tests/models/test_*.py find it
    sys.path.insert(0, str(Path(__file__).parent / "models"))
from checkpoint_builders import build_dream_checkpoint, build_llada_checkpoint  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "real_checkpoints.md"
FAMILIES: dict[str, dict[str, object]] = {
    "dream": {"heading": "### Dream-v0-Instruct-7B", "ckpt": "/ckpt/Dream-v0-Instruct-7B", "strategy": "entropy",
              "preset": "dream-gsm8k", "temperature": 0.1, "top_p": 0.9, "block_length": None, "margin": 0.1},
    "llada": {"heading": "### LLaDA-8B-Instruct", "ckpt": "/ckpt/LLaDA-8B-Instruct", "strategy": "confidence",
              "preset": "llada-gsm8k", "temperature": 0.0, "top_p": None, "block_length": 8, "margin": 0.2},
}
GEN = 16  # response tokens (and steps) of the shrunk run; the docs use 256 / the presets' lengths
SHRINK: dict[str, list[str]] = {
    "generate": ["--gen-length", str(GEN), "--steps", str(GEN), "--keep", "all", "--no-progress"],
    "train": [f"data.gen_length={GEN}", "objective.ce_window=8", "objective.rank_window=8", "max_steps=2",
              "batch_size=2", "optim.warmup_steps=0", "optim.lr=1e-2", "report_to=[]", "threads=1"],
    "eval": ["--gen-length", str(GEN), "--steps", str(GEN), "--no-progress"],
    "tds": ["--n", "3", "--gen-length", str(GEN), "--steps", str(GEN)],
}


# ----------------------------------------------------------------------------- the doc's commands
def doc_commands(family: str) -> list[tuple[str, list[str]]]:
    """(launcher, argv after `tabom`) for each command line of the family's block, in order.

    launcher is "" for a plain `tabom ...` line, else `torchrun` / `accelerate`; comments are
    dropped and backslash continuations joined.
    """
    text = DOC.read_text(encoding="utf-8")
    walkthrough = text.split("## Walkthrough", 1)[1]
    section = walkthrough.split(str(FAMILIES[family]["heading"]) + "\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, f"{DOC}: no bash block under {FAMILIES[family]['heading']}"
    commands: list[tuple[str, list[str]]] = []
    pending = ""
    for line in block.group(1).splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += " " + line.strip().removesuffix("\\")
        if line.rstrip().endswith("\\"):
            continue
        argv, pending = shlex.split(pending), ""
        if argv[0] == "tabom":
            commands.append(("", argv[1:]))
        else:  # `torchrun ... -m tabom.cli VERB ...` / `accelerate launch ... -m tabom.cli VERB ...`
            commands.append((argv[0], argv[argv.index("tabom.cli") + 1:]))
    return commands


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_doc_walkthrough_has_every_step(family: str) -> None:
    """Each block: generate (1 GPU, 8 GPUs), inspect, train (1 GPU, 8 GPUs), eval x3, tds."""
    spec = FAMILIES[family]
    cmds = doc_commands(family)
    verbs = [(launcher, argv[0]) for launcher, argv in cmds]
    assert verbs == [("", "generate"), ("torchrun", "generate"), ("", "data"), ("", "train"),
                     ("accelerate", "train"), ("", "eval"), ("", "eval"), ("", "eval"), ("", "tds")]
    gen = cmds[0][1]
    assert (_flag(gen, "--strategy"), _flag(gen, "--gen-length"), _flag(gen, "--steps")) == (
        spec["strategy"], "256", "256")
    assert "--keep" not in gen  # the documented default, --keep correct
    assert cmds[1][1] == gen  # the 8-GPU form decodes the same way into the same file
    run = f"runs/{family}_prm12k"
    assert _flag(cmds[3][1], "--recipe") == f"{family}_prm12k" and f"out={run}" in cmds[3][1]
    assert sorted(cmds[4][1]) == sorted(cmds[3][1])  # accelerate form: the same recipe and overrides
    evals = [argv for _, argv in cmds[5:8]]
    assert all(_flag(a, "--preset") == spec["preset"] and _flag(a, "--model") == spec["ckpt"] for a in evals)
    assert [_flag(a, "--adapter") for a in evals] == [None, f"{run}/final", f"{run}/final"]
    assert [_flag(a, "--tokens-per-step") for a in evals] == [None, None, "2"]
    tds = cmds[8][1]
    assert tds[tds.index("--compare") + 1:][:2] == [f"base={spec['ckpt']}", f"tabom={run}/final"]
    assert _flag(tds, "--n") == "64"


# ----------------------------------------------------------------------------- running it
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {"dream": build_dream_checkpoint(root / "Dream-v0-Instruct-7B", sharded=True),
            "llada": build_llada_checkpoint(root / "LLaDA-8B-Instruct")}


def write_data(folder: Path) -> None:
    """4 training prompts (the release's `question` alias, GSM8K-style answers) and 3 GSM8K test rows."""
    (folder / "data" / "gsm8k").mkdir(parents=True)
    prompts = [{"id": f"prm-{i}", "question": f"what is {i} + 3 ?", "answer": f"{i} + 3 = {i + 3}\n#### {i + 3}"}
               for i in range(4)]
    (folder / "data" / "prm12k_prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    tests = [{"question": f"Tom has {i} cats and gets 2 more. How many cats does he have?",
              "answer": f"{i} + 2 = <<{i}+2={i + 2}>>{i + 2}\n#### {i + 2}"} for i in range(3)]
    (folder / "data" / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tests))


def invoke(argv: list[str]) -> str:
    from tabom.cli import app

    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, f"tabom {shlex.join(argv)}\n{result.output}\n{result.exception!r}"
    return result.stdout


def check_generate(out: str, path: Path, spec: dict[str, object], ckpt: Path, rerun: bool) -> None:
    """4 valid rows, one token per step: each decoding_order is a permutation of 0..15."""
    from tabom.trajectories import read_trajectories

    rows = read_trajectories(path)  # strict: raises FILE:LINE: field on any bad row
    assert sorted(r.id for r in rows) == [f"prm-{i}" for i in range(4)]
    for r in rows:
        assert r.method == spec["strategy"] and r.model == str(ckpt)
        assert (r.settings["gen_length"], r.settings["steps"]) == (GEN, GEN)
        assert sorted(r.decoding_order) == list(range(GEN)) and len(r.response_token_ids) == GEN
        assert r.answer is not None and r.correct is not None  # verified against the answer
    assert ("decoded 0 " if rerun else "decoded 4 ") in out  # the 8-GPU line resumes: nothing left


def check_train(run: Path, spec: dict[str, object], ckpt: Path) -> None:
    """final/ is a PEFT adapter: r 16 on q_proj, v_proj of both layers (8 tensors), B trained off zero."""
    from safetensors.torch import load_file

    from tabom.training.logger import read_metrics

    final = run / "final"
    assert (final / "adapter_config.json").is_file() and (final / "COMPLETE").is_file()
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["r"] == 16 and sorted(config["target_modules"]) == ["q_proj", "v_proj"]
    tensors = load_file(str(final / "adapter_model.safetensors"))
    # LLaDA adapters are saved on LLaDA's own module names (loadable onto its own code)
    module = "model.transformer.blocks.{i}.{m}" if "LLaDA" in str(spec["ckpt"]) else "model.layers.{i}.self_attn.{m}"
    expected = {f"base_model.model.{module.format(i=i, m=m)}.lora_{ab}.weight"
                for i in range(2) for m in ("q_proj", "v_proj") for ab in "AB"}
    assert set(tensors) == expected
    assert all(tensors[k].abs().max() > 0 for k in expected if "lora_B" in k)
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(math.isfinite(m[k]) for m in metrics for k in ("loss", "loss_ce", "loss_rank"))
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    assert recipe["model"] == str(ckpt) and recipe["objective"]["margin"] == spec["margin"]


def check_eval(folder: Path, spec: dict[str, object], ckpt: Path, adapter: str | None, k: int | None) -> None:
    """results.json: the preset's settings with the shrink flags on top, 3 samples, k tokens per step."""
    report = json.loads((folder / "results.json").read_text())
    s = report["settings"]
    assert (s["preset"], s["strategy"], s["temperature"], s["top_p"], s["block_length"]) == (
        spec["preset"], spec["strategy"], spec["temperature"], spec["top_p"], spec["block_length"])
    assert (s["gen_length"], s["steps"], s["adapter"], s["base_model"]) == (GEN, GEN, adapter, str(ckpt))
    assert s["tokens_per_step"] == (k or 1)  # 16 tokens in 16 steps is one per step
    assert report["metrics"]["gsm8k"]["n"] == 3
    samples = report["samples"]
    assert [x["answer"] for x in samples] == ["2", "3", "4"]
    for x in samples:
        assert {"prompt", "output", "extracted", "correct", "decode_steps"} <= set(x)
        assert x["decode_steps"] == GEN // (k or 1)  # 16 steps, or 8 with two tokens per step


def check_tds(out: str, folder: Path, run: str) -> None:
    """CSV/PNG/JSON written, a `TDS label value` line per model, and the adapter changes the score."""
    with open(folder / "tds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == {"base", "tabom"} and list(rows[0]) == ["model", "step", "tds", "count"]
    assert (folder / "tds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((folder / "tds.json").read_text())
    printed = dict(re.findall(r"^TDS (\w+) (\S+)$", out, re.M))
    assert set(printed) == {"base", "tabom"}
    for label, value in printed.items():
        assert float(value) == pytest.approx(summary[label]["tds"], abs=1e-6) and summary[label]["n"] == 3
    assert f"{run}/final" in summary["tabom"]["model"]
    assert summary["tabom"]["tds"] != summary["base"]["tds"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_walkthrough_runs_on_stand_in_checkpoint(family: str, checkpoints: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line of the family's block, in order, exits 0 and leaves what the doc says."""
    torch.set_num_threads(1)
    spec, ckpt = FAMILIES[family], checkpoints[family]
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path)
    run = f"runs/{family}_prm12k"
    started, timings = time.perf_counter(), []
    for launcher, argv in doc_commands(family):
        argv = [str(ckpt) if a == spec["ckpt"] else a.replace(f"={spec['ckpt']}", f"={ckpt}") for a in argv]
        verb = argv[0]
        argv = argv + SHRINK.get(verb, []) + (["--dry-run"] if launcher == "accelerate" else [])
        t0 = time.perf_counter()
        out = invoke(argv)
        timings.append((launcher or "tabom", verb, round(time.perf_counter() - t0, 2)))
        if verb == "generate":
            check_generate(out, tmp_path / str(_flag(argv, "--out")), spec, ckpt, rerun=launcher == "torchrun")
        elif verb == "data":
            assert "all lines valid" in out
        elif verb == "train" and launcher == "accelerate":
            resolved = yaml.safe_load(out)
            assert (resolved["model"], resolved["out"], resolved["data"]["path"]) == (
                str(ckpt), run, f"data/{family}_prm12k.jsonl")
        elif verb == "train":
            check_train(tmp_path / run, spec, ckpt)
        elif verb == "eval":
            k = _flag(argv, "--tokens-per-step")
            check_eval(tmp_path / str(_flag(argv, "--out")), spec, ckpt, _flag(argv, "--adapter"),
                       int(k) if k else None)
        else:
            check_tds(out, tmp_path / str(_flag(argv, "--out")), run)
    print(f"{family} walkthrough: {time.perf_counter() - started:.1f}s", timings)
