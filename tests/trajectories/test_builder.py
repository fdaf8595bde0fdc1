"""Tests of the `tabom generate` builder on a tiny random model (gen_length 8, a few prompts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tabom.decoding import generate
from tabom.models import build_tiny, save
from tabom.trajectories import read_trajectories, shard_path
from tabom.trajectories.builder import (
    BuildConfig, Job, build_trajectories, code_of, expand_samples, file_jobs, keeps, meta_path,
    task_jobs, verify_jobs,
)
from tabom.trajectories.distributed import DistEnv, read_rejected, rejected_path

torch.set_num_threads(1)

PROMPTS = ["What is 2+3?", "Hi", "Count to three please.", "x", "Name a colour.", "7*6=?"]


def sharp_tiny() -> Any:
    """A tiny random model whose LM head is scaled by 50.

    A random model's logits are nearly uniform, so the float noise of another batch shape flips
    its near-tied choices; with a sharper head, batched and one-by-one greedy decodes agree.
    """
    model = build_tiny(seed=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=2, intermediate_size=64)
    with torch.no_grad():
        model.backbone.get_output_embeddings().weight.mul_(50.0)
    return model


@pytest.fixture(scope="module")
def tiny() -> Any:
    return sharp_tiny()


def write_prompts(path: Path, objs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


def rows_by_id(path: Path) -> dict[str, dict[str, Any]]:
    return {t.id: t.to_json() for t in read_trajectories(path)}


def cfg(**kw: Any) -> BuildConfig:
    base: dict[str, Any] = dict(gen_length=8, batch_size=2, verify="none", keep="all")
    return BuildConfig(**(base | kw))


def test_defaults_follow_the_model_family(tiny: Any) -> None:
    """tiny: G=64, steps=64, entropy, one token per step; a LLaDA-style model: G=256, confidence."""
    r = BuildConfig().resolved(tiny)
    assert (r.gen_length, r.steps, r.strategy, r.tokens_per_step) == (64, 64, "entropy", 1)

    class Llada:
        family, default_strategy, default_gen_length = "llada", "confidence", 256

    r = BuildConfig(steps=128).resolved(Llada())
    assert (r.gen_length, r.steps, r.strategy, r.tokens_per_step) == (256, 128, "confidence", None)
    with pytest.raises(ValueError, match="samples_per_prompt"):
        BuildConfig(samples_per_prompt=2)
    with pytest.raises(ValueError, match="keep"):
        BuildConfig(keep="some")


def test_rows_record_what_the_model_saw_and_decoded(tiny: Any, tmp_path: Path) -> None:
    """Each row equals a direct `generate` of its prompt; order is a permutation of 0..7."""
    prompts = write_prompts(tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": p} for i, p in enumerate(PROMPTS)])
    out = tmp_path / "t.jsonl"
    stats = build_trajectories(tiny, file_jobs(prompts), out, cfg(seed=3), env=DistEnv())
    rows = rows_by_id(out)
    assert sorted(rows) == [f"q{i}" for i in range(6)]
    ids = [tiny.encode_prompt(p) for p in PROMPTS]
    direct = generate(tiny, ids, gen_length=8, steps=8, strategy="entropy", tokens_per_step=1)
    for i, p in enumerate(PROMPTS):
        row = rows[f"q{i}"]
        assert row["prompt"] == p and row["prompt_token_ids"] == ids[i]
        assert row["response_token_ids"] == direct.tokens[i].tolist()
        assert row["decoding_order"] == direct.decoding_order[i].tolist()
        assert sorted(row["decoding_order"]) == list(range(8))
        assert row["response"] == tiny.decode(direct.tokens[i])
        assert row["method"] == "entropy" and row["data_source"] == "p" and row["correct"] is None
        assert row["settings"]["seed"] == 3 and row["settings"]["eos_token_id"] == tiny.eos_token_id
    # 6 prompts in batches of 2 -> 3 batches of 8 forwards each; every row spends 8 forwards
    assert (stats.batches, stats.nfe, stats.row_forwards) == (3, 24, 48)
    meta = json.loads(meta_path(out).read_text())
    assert meta["total"] == dict(generated=6, kept=6, correct=0, wrong=0, unverified=6)
    assert meta["yield"] == 1.0 and meta["status"] == "done"


def test_verifiers() -> None:
    """Family verifier, sandboxed tests, reference answer, nothing -> True/False/None."""
    from tabom.tasks import get_family

    prob = get_family("math_chain").problems("train", 1, seed=0)[0]
    jobs = [
        Job("a", prob.prompt, "math_chain", answer=prob.answer, problem=prob),
        Job("b", prob.prompt, "math_chain", answer=prob.answer, problem=prob),
        Job("c", "add", "code", tests=("assert add(1, 2) == 3",)),
        Job("d", "add", "code", tests=("assert add(1, 2) == 3",)),
        Job("e", "sum?", "gsm", answer="1,234"),
        Job("f", "sum?", "gsm", answer="5"),
        Job("g", "hi", "chat"),
    ]
    outputs = [prob.native, "#### nothing", "```python\ndef add(a, b):\n    return a + b\n```",
               "def add(a, b):\n    return a - b", "The total is $1234.", "It is 6.", "hello"]
    assert verify_jobs(jobs, outputs) == [True, False, True, False, True, False, None]
    assert code_of("x\n```py\nprint(1)\n```\ny") == "print(1)\n"
    assert [keeps(v, "correct") for v in (True, False, None)] == [True, False, True]
    assert keeps(False, "all")


def test_keep_correct_rejects_wrong_rows_and_resumes_past_them(tiny: Any, tmp_path: Path) -> None:
    """A reference answer the random model cannot produce -> rejected, logged, never redone.

    Prompts: one with answer -987654321 (wrong), one without answer (unverified, kept):
    yield 1/2.
    """
    prompts = write_prompts(tmp_path / "p.jsonl", [
        {"id": "wrong", "prompt": "What is 2+3?", "answer": "-987654321", "data_source": "gsm"},
        {"id": "open", "prompt": "Say hi", "data_source": "chat"},
    ])
    out = tmp_path / "t.jsonl"
    build_trajectories(tiny, file_jobs(prompts), out, cfg(verify="auto", keep="correct"), env=DistEnv())
    assert list(rows_by_id(out)) == ["open"]
    assert read_rejected(rejected_path(out))["wrong"]["correct"] is False
    meta = json.loads(meta_path(out).read_text())
    assert meta["yield"] == 0.5
    assert meta["counts"]["gsm"] == dict(generated=1, kept=0, correct=0, wrong=1, unverified=0)
    calls: list[int] = []
    again = build_trajectories(tiny, file_jobs(prompts), out, cfg(verify="auto", keep="correct"),
                               env=DistEnv(), on_batch=lambda b, kept: calls.append(b))
    assert calls == [] and again.generated == 0 and again.yield_ == 0.5


def test_samples_per_prompt_ids(tiny: Any, tmp_path: Path) -> None:
    """2 prompts x 3 samples at temperature 1 -> ids q0#0..q0#2, q1#0..q1#2."""
    prompts = write_prompts(tmp_path / "p.jsonl", [{"id": "q0", "prompt": "a"}, {"id": "q1", "prompt": "bb"}])
    out = tmp_path / "t.jsonl"
    jobs = expand_samples(file_jobs(prompts), 3)
    build_trajectories(tiny, jobs, out, cfg(temperature=1.0, samples_per_prompt=3), env=DistEnv())
    rows = rows_by_id(out)
    assert sorted(rows) == ["q0#0", "q0#1", "q0#2", "q1#0", "q1#1", "q1#2"]
    assert all(r["settings"]["temperature"] == 1.0 for r in rows.values())


class Killed(RuntimeError):
    pass


def test_killed_run_resumes_to_the_same_file(tiny: Any, tmp_path: Path) -> None:
    """Kill after the first batch (2 rows written), rerun: same ids and rows as one clean run."""
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": p} for p in PROMPTS])
    clean, broken = tmp_path / "clean.jsonl", tmp_path / "broken.jsonl"
    build_trajectories(tiny, file_jobs(prompts), clean, cfg(), env=DistEnv())

    def kill(batch: int, kept: list[Any]) -> None:
        raise Killed(f"after batch {batch}")

    with pytest.raises(Killed):
        build_trajectories(tiny, file_jobs(prompts), broken, cfg(), env=DistEnv(), on_batch=kill)
    assert len(rows_by_id(broken)) == 2
    # a kill in the middle of the next write leaves a torn line behind
    with open(broken, "a") as f:
        f.write('{"id": "p-half", "prompt": "Hi", "resp')
    calls: list[int] = []
    build_trajectories(tiny, file_jobs(prompts), broken, cfg(), env=DistEnv(),
                       on_batch=lambda b, kept: calls.append(b))
    assert calls == [0, 1]  # only the 4 missing prompts were decoded, in 2 batches
    assert rows_by_id(broken) == rows_by_id(clean)


def test_leftover_shards_of_another_world_are_folded_in(tiny: Any, tmp_path: Path) -> None:
    """Shards of a killed 2-process run are merged and their ids skipped by a 1-process rerun."""
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": p} for p in PROMPTS])
    clean = tmp_path / "clean.jsonl"
    build_trajectories(tiny, file_jobs(prompts), clean, cfg(), env=DistEnv())
    lines = clean.read_text().splitlines(keepends=True)
    out = tmp_path / "t.jsonl"
    shard_path(out, 0, 2).write_text(lines[0] + lines[2])
    shard_path(out, 1, 2).write_text(lines[1])
    stats = build_trajectories(tiny, file_jobs(prompts), out, cfg(), env=DistEnv())
    assert stats.generated == 3
    assert not shard_path(out, 0, 2).exists() and not shard_path(out, 1, 2).exists()
    assert rows_by_id(out) == rows_by_id(clean)


def test_rerun_with_other_settings_is_refused(tiny: Any, tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "a"}])
    out = tmp_path / "t.jsonl"
    build_trajectories(tiny, file_jobs(prompts), out, cfg(), env=DistEnv())
    with pytest.raises(ValueError, match=r"meta\.json: settings\.gen_length: this run has 16"):
        build_trajectories(tiny, file_jobs(prompts), out, cfg(gen_length=16), env=DistEnv())


def test_dist_env_from_environ() -> None:
    assert DistEnv.from_environ({}) == DistEnv(0, 1, 0)
    assert DistEnv.from_environ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == DistEnv(3, 4, 1)
    with pytest.raises(ValueError, match="RANK=4 WORLD_SIZE=4"):
        DistEnv.from_environ({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="WORLD_SIZE: expected an int"):
        DistEnv.from_environ({"WORLD_SIZE": "two"})


def test_cli_on_a_task_family(tiny: Any, tmp_path: Path) -> None:
    """`tabom generate --task math_chain --n 3`: 3 problems decoded, yield printed, meta written."""
    from typer.testing import CliRunner

    from tabom.cli import app

    model_dir = save(tiny, tmp_path / "model")
    out = tmp_path / "t.jsonl"
    args = ["generate", "--model", str(model_dir), "--task", "math_chain", "--n", "3", "--gen-length", "8",
            "--out", str(out), "--keep", "all", "--batch-size", "2", "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "kept 3 / generated 3 (yield 100.0%)" in res.output
    rows = rows_by_id(out)
    assert sorted(rows) == sorted(j.id for j in task_jobs("math_chain", "train", 3, seed=0))
    assert all(r["data_source"] == "math_chain" and isinstance(r["correct"], bool) for r in rows.values())
    meta = json.loads(meta_path(out).read_text())
    assert meta["source"] == {"task": "math_chain", "split": "train", "n": 3, "seed": 0}
    bad = CliRunner().invoke(app, ["generate", "--out", str(out)])
    assert bad.exit_code != 0 and "exactly one of --prompts and --task" in bad.output
