"""`tabom pretrain` on a test-sized model: the loss falls and the checkpoint loads back."""

from __future__ import annotations

import json

import pytest
import torch

from tabom.models import load
from tabom.pretraining.pretrain import (
    PretrainConfig,
    collate,
    collate_groups,
    digit_token_ids,
    number_groups,
    pretrain,
    response_ids,
    training_pairs,
)

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
             intermediate_size=64, max_position_embeddings=256)


def test_pretrain_lowers_loss_and_saves(tmp_path) -> None:
    cfg = PretrainConfig(out=str(tmp_path / "tiny"), steps=40, batch_size=16, lr=3e-3, warmup=5,
                         n_per_family=40, gen_length=64, model=SMALL)
    model = pretrain(cfg, progress=False)
    log = [json.loads(line) for line in (tmp_path / "tiny" / "pretrain_log.jsonl").read_text().splitlines()]
    assert len(log) == 40
    first = sum(r["loss"] for r in log[:5]) / 5
    last = sum(r["loss"] for r in log[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    again = load(tmp_path / "tiny", device="cpu")
    x = torch.randint(5, 100, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_bf16_autocast_trains_the_same_problem_in_float32_weights(tmp_path) -> None:
    """--precision bf16: same data and masks, so the first loss matches fp32's to bf16 rounding;
    the weights stay float32 and the loss still falls; an unknown precision is refused."""
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = PretrainConfig(out=str(tmp_path / precision), steps=30, batch_size=16, lr=3e-3, warmup=5,
                             n_per_family=40, gen_length=64, model=SMALL, precision=precision)
        model = pretrain(cfg, progress=False)
        log = (tmp_path / precision / "pretrain_log.jsonl").read_text().splitlines()
        runs[precision] = [json.loads(line)["loss"] for line in log]
        assert all(p.dtype == torch.float32 for p in model.parameters())
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert bf16[0] == pytest.approx(fp32[0], rel=0.02) and bf16[0] != fp32[0]
    assert sum(bf16[-5:]) < 0.8 * sum(bf16[:5])
    with pytest.raises(ValueError, match="precision"):
        PretrainConfig(precision="fp16")


def test_response_ids_pad_with_eos_and_reject_overflow() -> None:
    import pytest

    from tabom.models import build_tiny

    m = build_tiny(**SMALL)
    ids = response_ids(m, "12", 5)
    assert ids[:2] == m.tokenizer.encode("12", add_special_tokens=False) and ids[2:] == [2, 2, 2]
    with pytest.raises(ValueError, match="gen_length"):
        response_ids(m, "x" * 5, 5)


def test_collate_left_pads_prompts() -> None:
    from tabom.models import build_tiny

    m = build_tiny(**SMALL)
    ids, attn, resp = collate(m, [([3, 10, 4], [20, 2]), ([3, 4], [21, 2])])
    assert ids.tolist() == [[3, 10, 4, 20, 2], [0, 3, 4, 21, 2]]
    assert attn.tolist()[1] == [False, True, True, True, True]
    assert resp.tolist() == [[False, False, False, True, True], [False, False, False, True, True]]


def test_killed_pretraining_resumes_to_the_same_weights(tmp_path, monkeypatch) -> None:
    """Kill after step 5 (snapshot at 4), resume: the final weights equal an uninterrupted run's."""
    import pytest

    import tabom.pretraining.pretrain as pt

    torch.set_num_threads(1)
    base = dict(steps=8, batch_size=4, lr=3e-3, warmup=2, n_per_family=8, gen_length=64, model=SMALL,
                save_every=4, threads=1)
    whole = pretrain(PretrainConfig(out=str(tmp_path / "whole"), **base), progress=False)

    calls = {"n": 0}
    real_collate = pt.collate

    def dying_collate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt("killed")
        return real_collate(*args, **kwargs)

    monkeypatch.setattr(pt, "collate", dying_collate)
    with pytest.raises(KeyboardInterrupt):
        pretrain(PretrainConfig(out=str(tmp_path / "cut"), **base), progress=False)
    monkeypatch.setattr(pt, "collate", real_collate)
    assert (tmp_path / "cut" / "resume" / "COMPLETE").read_text() == "4"
    with (tmp_path / "cut" / "pretrain_log.jsonl").open("a") as log:
        log.write('{"step": 5, "lo')  # a line torn by the kill
    resumed = pretrain(PretrainConfig(out=str(tmp_path / "cut"), **base), progress=False, resume=True)
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "pretrain_log.jsonl").read_text().splitlines()]
    assert steps == list(range(8))


def test_resume_without_state_is_a_clear_error(tmp_path) -> None:
    import pytest

    with pytest.raises(FileNotFoundError, match="resume"):
        pretrain(PretrainConfig(out=str(tmp_path / "none"), steps=2, batch_size=2, n_per_family=2, model=SMALL),
                 progress=False, resume=True)


def test_cli_defaults_match_pretrain_config_defaults():
    """`tabom pretrain` with no options must be PretrainConfig(), so the documented commands (which
    name only the options that differ from the defaults) mean what they say."""
    import inspect

    from tabom.commands.pretrain import pretrain as command

    defaults = {name: p.default.default for name, p in inspect.signature(command).parameters.items()}
    cfg = PretrainConfig()
    for name in ("steps", "batch_size", "lr", "n_per_family", "gen_length", "seed", "threads", "save_every",
                 "device", "drill", "drill_lines", "drill_only", "group_numbers", "precision"):
        assert defaults[name] == getattr(cfg, name), name


def test_cli_shape_options_build_that_model(tmp_path) -> None:
    """--hidden-size/--layers/--heads/--intermediate-size reach the saved config; unset ones keep
    TinyConfig's defaults."""
    from typer.testing import CliRunner

    from tabom.cli import app

    out = tmp_path / "m"
    result = CliRunner().invoke(app, ["pretrain", "--out", str(out), "--steps", "2", "--batch-size", "4",
                                      "--n-per-family", "4", "--hidden-size", "32", "--layers", "2",
                                      "--heads", "2", "--intermediate-size", "64"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"],
            config["num_key_value_heads"], config["intermediate_size"]) == (32, 2, 2, 2, 64)
    assert config["max_position_embeddings"] == 512
    saved = json.loads((out / "pretrain_config.json").read_text())
    assert saved["model"] == {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                              "num_key_value_heads": 2, "intermediate_size": 64}
    assert saved["device"] == "cpu"


def test_bucketed_order_covers_every_example_once_in_length_sorted_batches():
    import random

    from tabom.pretraining.pretrain import bucketed_order

    lengths = [random.Random(i).randint(5, 100) for i in range(1000)]
    order = bucketed_order(lengths, 8, random.Random(0), chunk=4)
    assert sorted(order) == list(range(1000))
    batches = [[order.pop() for _ in range(8)] for _ in range(1000 // 8)]
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 40  # random batches of 8 from 5..100 spread ~70 on average
    again = bucketed_order(lengths, 8, random.Random(0), chunk=4)
    assert again == bucketed_order(lengths, 8, random.Random(0), chunk=4)


def test_init_starts_from_the_checkpoint_and_a_finished_run_extends_with_resume(tmp_path) -> None:
    import pytest

    torch.set_num_threads(1)
    base = dict(batch_size=4, lr=3e-3, warmup=2, n_per_family=8, gen_length=64, threads=1)
    first = pretrain(PretrainConfig(out=str(tmp_path / "a"), steps=4, save_every=2, model=SMALL, **base),
                     progress=False)
    assert "extended_from" not in json.loads((tmp_path / "a" / "pretrain_config.json").read_text())
    # The last step writes the resume state too, so a larger --steps continues from step 4.
    assert (tmp_path / "a" / "resume" / "COMPLETE").read_text() == "4"
    pretrain(PretrainConfig(out=str(tmp_path / "a"), steps=6, save_every=2, model=SMALL, **base),
             progress=False, resume=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / "a" / "pretrain_log.jsonl").read_text().splitlines()]
    assert steps == list(range(6))
    # The saved settings say the 6 steps extend a finished 4-step run (the schedule restarted).
    saved = json.loads((tmp_path / "a" / "pretrain_config.json").read_text())
    assert (saved["steps"], saved["extended_from"]) == (6, [4])
    # --init: the weights come from the checkpoint (lr 0 keeps them), not from a fresh seed.
    frozen = pretrain(PretrainConfig(out=str(tmp_path / "b"), steps=1, init=str(tmp_path / "a" / "step_2"),
                                     **(base | {"lr": 0.0})), progress=False)
    start = load(str(tmp_path / "a" / "step_2"))
    for (name, a), (_, b) in zip(start.state_dict().items(), frozen.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(a, b) for a, b in zip(first.state_dict().values(), frozen.state_dict().values()))
    # A snapshot has no pretrain_config.json; a finished run's settings go into the new run's file.
    assert "init_config" not in json.loads((tmp_path / "b" / "pretrain_config.json").read_text())
    pretrain(PretrainConfig(out=str(tmp_path / "c"), steps=1, init=str(tmp_path / "a"), **base), progress=False)
    staged = json.loads((tmp_path / "c" / "pretrain_config.json").read_text())
    assert staged["init"] == str(tmp_path / "a") and staged["init_config"] == saved
    with pytest.raises(ValueError, match="init"):
        PretrainConfig(init=str(tmp_path / "a"), model=SMALL)


def test_training_pairs_append_the_drill_after_the_families() -> None:
    from tabom.models.tiny import build_tiny
    from tabom.tasks import mixture
    from tabom.tasks.drill import arithmetic_drill

    model = build_tiny(**SMALL)
    plain = training_pairs(model, PretrainConfig(n_per_family=5))
    drilled = training_pairs(model, PretrainConfig(n_per_family=5, drill=7))
    assert len(plain) == 30 and len(drilled) == 37
    assert drilled[:30] == plain
    natives = [p.native for p in mixture("train", 5, seed=0)]
    for (prompt, answer), (q, a) in zip(drilled[30:], arithmetic_drill(natives, 7, seed=0), strict=True):
        assert prompt == model.encode_prompt(q)
        assert answer == response_ids(model, a, 64)


def test_drill_only_keeps_the_drill_and_drops_the_families() -> None:
    from tabom.models.tiny import build_tiny

    model = build_tiny(**SMALL)
    drilled = training_pairs(model, PretrainConfig(n_per_family=5, drill=7))
    alone = training_pairs(model, PretrainConfig(n_per_family=5, drill=7, drill_only=True, gen_length=8))
    assert len(alone) == 7
    # The same drill pairs as in the mixture, only in a shorter response window.
    assert [(p, [t for t in a if t != model.eos_token_id]) for p, a in alone] == \
        [(p, [t for t in a if t != model.eos_token_id]) for p, a in drilled[30:]]
    assert all(len(a) == 8 for _, a in alone)
    with pytest.raises(ValueError, match="drill_only"):
        PretrainConfig(drill_only=True)


def test_drill_sheets_fill_the_answer_window_with_several_facts() -> None:
    from tabom.models.tiny import build_tiny

    model = build_tiny(**SMALL)
    sheets = training_pairs(model, PretrainConfig(n_per_family=5, drill=7, drill_lines=5, gen_length=64))
    assert len(sheets) == 37
    for prompt, answer in sheets[30:]:
        assert prompt == model.encode_prompt("Work out:")
        text = model.decode(answer)
        assert 1 <= len(text.split("\n")) <= 5 and len(text) <= 63 and answer[-1] == model.eos_token_id
    assert any(len(model.decode(a).split("\n")) > 1 for _, a in sheets[30:])
    with pytest.raises(ValueError, match="drill_lines"):
        PretrainConfig(drill=7, drill_lines=0)


def test_task_options_file_reaches_the_mixture_and_bad_files_name_file_line_family(tmp_path) -> None:
    from tabom.models.tiny import build_tiny
    from tabom.tasks import mixture
    from tabom.pretraining.pretrain import load_task_options

    good = tmp_path / "tasks.yaml"
    good.write_text("# harder\nmath_chain:\n  start_range: [30, 40]\n  max_value: 99\n")
    opts = load_task_options(good)
    assert opts == {"math_chain": {"start_range": [30, 40], "max_value": 99}}
    model = build_tiny(**SMALL)
    pairs = training_pairs(model, PretrainConfig(n_per_family=5, tasks=opts))
    mix = mixture("train", 5, seed=0, options={"math_chain": {"start_range": (30, 40), "max_value": 99}})
    assert {p.meta["start"] for p in mix if p.family == "math_chain"} <= set(range(30, 41))
    assert pairs == [(model.encode_prompt(p.prompt), response_ids(model, p.native, 64)) for p in mix]
    assert pairs != training_pairs(model, PretrainConfig(n_per_family=5))
    assert load_task_options(good) == opts
    for text, expected in (
        ("math_chain:\n  start_range: [2, 20]\nno_family:\n  x: 1\n", r"tasks.yaml:3: no_family: .*unknown task family"),
        ("math_linear:\n  bogus: 1\n", r"tasks.yaml:1: math_linear: .*bad constructor arguments"),
        ("code_trace:\n  const_range: [5, 1]\n", r"tasks.yaml:1: code_trace: .*const_range"),
        ("math_chain: 3\n", r"tasks.yaml:1: math_chain: expected a mapping"),
        ("- a\n- b\n", r"tasks.yaml: expected a mapping of family name"),
        ("a: [\n", r"tasks.yaml:2: not valid YAML"),
        ("a: &x [1]\nb: *x\n", r"tasks.yaml:1: not valid YAML .*anchors and aliases"),
    ):
        bad = tmp_path / "tasks.yaml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=expected):
            load_task_options(bad)


def test_cli_tasks_option_reaches_the_saved_config_and_a_bad_file_exits_2(tmp_path) -> None:
    import subprocess
    import sys

    from typer.testing import CliRunner

    from tabom.cli import app

    knobs = tmp_path / "knobs.yaml"
    knobs.write_text("code_trace:\n  use_floordiv: true\n")
    out = tmp_path / "m"
    result = CliRunner().invoke(app, ["pretrain", "--out", str(out), "--steps", "1", "--batch-size", "2",
                                      "--n-per-family", "2", "--hidden-size", "32", "--layers", "1",
                                      "--heads", "2", "--intermediate-size", "64", "--tasks", str(knobs)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "pretrain_config.json").read_text())["tasks"] == {"code_trace": {"use_floordiv": True}}
    knobs.write_text("code_trace:\n  use_floordiv: true\nmath_chain:\n  max_value: 1\n")
    run = subprocess.run([sys.executable, "-c", "from tabom.cli import main; main()", "pretrain", "--out",
                          str(tmp_path / "bad"), "--tasks", str(knobs)], capture_output=True, text=True)
    assert run.returncode == 2
    assert f"{knobs}:3: math_chain:" in run.stderr and "max_value" in run.stderr
    assert not (tmp_path / "bad").exists()  # rejected before anything is written


def test_number_groups_tie_every_occurrence_of_a_value() -> None:
    m = load("tiny")
    digits = digit_token_ids(m)
    text = "7+5=12\n12-3=9\n#### 9"
    groups = number_groups(response_ids(m, text, 24), digits)
    by_char = list(zip(text, groups))
    # 7 -> 0, 5 -> 1, both 12s -> 2, 3 -> 3, both 9s -> 4; operators, newlines, EOS -> -1
    assert [g for c, g in by_char if c.isdigit()] == [0, 1, 2, 2, 2, 2, 3, 4, 4]
    assert all(g == -1 for c, g in by_char if not c.isdigit())
    assert groups[len(text):] == [-1] * (24 - len(text))
    # 12 and 1 / 2 are different numbers: runs, not single digits, are the unit
    assert number_groups(response_ids(m, "12 1 2 12", 12), digits)[:9] == [0, 0, -1, 1, -1, 2, -1, 0, 0]


def test_collate_groups_line_up_with_collate() -> None:
    m = load("tiny")
    digits = digit_token_ids(m)
    pairs = [(m.encode_prompt("a"), response_ids(m, "3+3=6", 8)),
             (m.encode_prompt("a longer prompt 12"), response_ids(m, "6", 8))]
    ids, _, resp = collate(m, pairs)
    groups = collate_groups(pairs, [number_groups(a, digits) for _, a in pairs])
    assert groups.shape == ids.shape
    assert (groups[~resp] == -1).all()  # prompts (even their digits) and padding never grouped
    assert groups[0, -8:].tolist() == [0, -1, 0, -1, 1, -1, -1, -1]


def test_group_numbers_pretraining_runs_and_masks_twins_together(tmp_path, monkeypatch) -> None:
    """With --group-numbers every batch's masking ties equal numbers: record the masks the
    objective sees and check that no value is half masked."""
    import tabom.objectives.nelbo as nelbo

    seen = []
    real = nelbo.mask_uniform

    def recording(input_ids, maskable, mask_token_id, generator, eps=1e-3, groups=None):
        out = real(input_ids, maskable, mask_token_id, generator, eps, groups=groups)
        seen.append((groups, out[1]))
        return out

    monkeypatch.setattr(nelbo, "mask_uniform", recording)
    cfg = PretrainConfig(out=str(tmp_path / "g"), steps=3, batch_size=8, n_per_family=8, warmup=1,
                         model=SMALL, group_numbers=True)
    pretrain(cfg, progress=False)
    assert len(seen) == 3
    tied = 0
    for groups, masked in seen:
        assert groups is not None
        for b in range(groups.shape[0]):
            for g in groups[b].unique().tolist():
                if g < 0:
                    continue
                states = masked[b][groups[b] == g]
                assert states.all() or not states.any()
                tied += int(states.numel() > 1)
    assert tied > 0


def test_shipped_task_files_load_and_name_real_knobs() -> None:
    """Every YAML under tabom/assets/tasks is a valid --tasks file (the recipes of the shipped model)."""
    from importlib.resources import files

    from tabom.tasks import get_family
    from tabom.pretraining.pretrain import load_task_options

    shipped = {p.name: load_task_options(str(p))
               for p in files("tabom").joinpath("assets", "tasks").iterdir() if p.name.endswith(".yaml")}
    assert sorted(shipped) == ["before_2026-11-30.yaml", "tiny_stages_1_2.yaml"]
    assert all(shipped.values()), shipped
    stages = shipped["tiny_stages_1_2.yaml"]
    assert stages == {"code_func": {"extended": False}}
    assert len(get_family("code_func", **stages["code_func"]).templates) < len(get_family("code_func").templates)
