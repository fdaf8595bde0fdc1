"""`tabom train` under bad input and faults (docs/reliability.md, 'Training runs and recipes').

Each case is a value or a state that once gave a wrong result, a stuck run or a traceback: a
diverging run that "succeeded" with NaN weights, a resume on other data, token ids the model
does not have, a run folder reused without --resume. Runs use the 2-layer random tiny model of
`tests/training/train_helpers.py` (a few seconds each).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))  # train_helpers

from tabom.training import checkpoint as ckpt  # noqa: E402
from tabom.training import trainer as trainer_module  # noqa: E402
from tabom.training.trainer import NonFiniteError, RunExistsError, train  # noqa: E402
from tabom.trajectories.inspect import inspect_file  # noqa: E402
from tabom.trajectories.schema import TrajectoryError  # noqa: E402
from train_helpers import tiny_config, trajectory_obj, write_trajectories  # noqa: E402

TINY_VOCAB = 101  # the character tokenizer's size: the tiny model's embedding rows


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def traj_file(tmp_path: Path) -> Path:
    """12 synthetic trajectories with 16-token responses (3 steps an epoch at batch 4)."""
    return write_trajectories(tmp_path / "traj.jsonl", 12)


def _rows(n: int = 12, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [trajectory_obj(i, rng) for i in range(n)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _finite_weights(folder: Path) -> bool:
    state = load_file(str(folder / "adapter_model.safetensors"))
    return bool(state) and all(bool(torch.isfinite(t).all()) for t in state.values())


# --------------------------------------------------------------------------- divergence
def test_a_diverging_run_stops_with_the_step_and_writes_no_final(tmp_path: Path) -> None:
    """lr 1e30 (finite, so the recipe accepts it) blows up at step 2: the run used to finish
    and save final/ full of NaN; now it stops at that step and final/ is never written."""
    data = write_trajectories(tmp_path / "t.jsonl", 8)
    cfg = tiny_config(tmp_path / "run", data, "tabom")
    cfg.optim.lr = 1e30
    cfg.optim.warmup_steps = 0
    with pytest.raises(NonFiniteError, match=r"^step 2: .*loss nan.*training diverged.*final/ not written"):
        train(cfg, console=False)
    assert not (tmp_path / "run" / "final").exists()
    assert ckpt.find_latest(tmp_path / "run") is None


def test_a_nan_loss_keeps_earlier_checkpoints_and_the_run_resumes(tmp_path: Path, traj_file: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN loss at step 3 (injected) with a checkpoint every step: step_1 and step_2 stay
    complete and finite, nothing is written for step 3, and --resume then finishes the run."""
    cfg = tiny_config(tmp_path / "run", traj_file, "tabom", save_every=1, keep_step_checkpoints=5)
    real_step = trainer_module.loss_step
    calls = {"n": 0}

    def nan_at_third(*args: object, **kwargs: object):  # noqa: ANN202 (the patched function's type)
        out = real_step(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(trainer_module, "loss_step", nan_at_third)
    with pytest.raises(NonFiniteError, match=rf"^step 3: grad_norm nan, loss nan: training diverged.*the last checkpoint is {tmp_path / 'run' / 'step_2'}"):
        train(cfg, console=False)
    monkeypatch.undo()
    run = tmp_path / "run"
    assert [f.name for _, f in ckpt.list_complete(run)] == ["step_1", "step_2"]
    assert all(_finite_weights(run / name) for name in ("step_1", "step_2"))
    assert not (run / "final").exists() and not (run / "epoch_1").exists()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    train(cfg, resume=True, console=False)
    assert ckpt.is_complete(run / "final") and _finite_weights(run / "final")


# --------------------------------------------------------------------------- resume on other data
def test_resume_on_different_data_of_the_same_length_is_refused(tmp_path: Path) -> None:
    """Same number of rows, so the shuffle permutation matches: only the data fingerprint tells."""
    first = write_trajectories(tmp_path / "a.jsonl", 12, seed=0)
    other = write_trajectories(tmp_path / "b.jsonl", 12, seed=5)
    cfg = tiny_config(tmp_path / "run", first, "tabom")
    train(cfg, console=False)
    for name in ("final", "epoch_2"):
        shutil.rmtree(tmp_path / "run" / name)
    swapped = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(other)))
    with pytest.raises(ValueError, match=r"epoch_1: saved with different training data \(rows sha256"):
        train(swapped, resume=True, console=False)
    assert not (tmp_path / "run" / "final").exists()
    train(cfg, resume=True, console=False)  # the same data resumes
    assert ckpt.is_complete(tmp_path / "run" / "final")


# --------------------------------------------------------------------------- one validator
def test_train_and_inspect_agree_on_out_of_range_ids_and_duplicates(tmp_path: Path) -> None:
    """Both refuse with the same FILE:LINE message: an id past the vocabulary (train used to die
    in the embedding with IndexError), a repeated id (train used to accept it)."""
    rows = _rows()
    rows[2]["response_token_ids"][0] = 10**6
    oob = _write(tmp_path / "oob.jsonl", rows)
    rows = _rows()
    rows[3]["id"] = rows[0]["id"]
    dup = _write(tmp_path / "dup.jsonl", rows)
    for path, message in ((oob, f"{oob}:3: response_token_ids: item 0 is 1000000, outside the model's vocabulary [0, {TINY_VOCAB})"),
                          (dup, f"{dup}:4: id: duplicate id 't0' (first on line 1)")):
        report = inspect_file(path, vocab_size=TINY_VOCAB)
        assert [str(e) for e in report.errors] == [message]
        with pytest.raises(TrajectoryError) as info:
            train(tiny_config(tmp_path / f"run_{path.stem}", path, "tabom"), console=False)
        assert str(info.value) == message
        assert not (tmp_path / f"run_{path.stem}").exists()


# --------------------------------------------------------------------------- clear refusals
def test_an_existing_run_without_resume_is_a_clear_error(tmp_path: Path, traj_file: Path) -> None:
    cfg = tiny_config(tmp_path / "run", traj_file, "nelbo", epochs=1)
    train(cfg, console=False)
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    with pytest.raises(RunExistsError, match=r"already holds a run's checkpoints \(epoch_1, final\); pass --resume .* another out=DIR"):
        train(cfg, console=False)
    assert issubclass(RunExistsError, ValueError) and issubclass(RunExistsError, FileExistsError)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before


def test_data_path_that_is_a_folder_says_so(tmp_path: Path, traj_file: Path) -> None:
    with pytest.raises(ValueError, match=rf"data.path: {tmp_path}: is a directory, expected a JSONL file"):
        train(tiny_config(tmp_path / "run", tmp_path, "nelbo"), console=False)


def test_config_changed_after_construction_is_checked_before_anything_runs(tmp_path: Path, traj_file: Path) -> None:
    cfg = tiny_config(tmp_path / "run", traj_file, "tabom")
    cfg.lora.alpha = math.nan
    with pytest.raises(ValueError, match=r"^lora\.alpha: must be a finite number, got nan$"):
        train(cfg, console=False)
    assert not (tmp_path / "run").exists()


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, traj_file: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Through the console entry point: no traceback, `error: ...`, exit status 2."""
    from tabom.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: tiny-random\nmodel_shape: {hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, "
        "num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 64}\n"
        f"out: {tmp_path / 'run'}\nepochs: 1\nreport_to: []\nthreads: 1\n"
        f"data: {{path: {traj_file}, gen_length: 16}}\nobjective: {{name: nelbo}}\n"
    )

    def cli(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["tabom", *args])
        with pytest.raises(SystemExit) as info:
            main()
        return int(info.value.code or 0), capsys.readouterr().err

    assert cli("train", "--recipe", str(recipe))[0] == 0
    code, err = cli("train", "--recipe", str(recipe))
    assert code == 2 and err.startswith("error: out=") and "--resume" in err and "Traceback" not in err
    code, err = cli("train", "--recipe", str(tmp_path))
    assert (code, err) == (2, f"error: {tmp_path}: is a directory, expected a recipe YAML file (or a built-in recipe's name)\n")
    code, err = cli("train", "--recipe", str(recipe), "optim.lr=inf", "--dry-run")
    assert (code, err) == (2, "error: override optim.lr=inf: optim.lr: must be a finite number, got inf\n")
    code, err = cli("train", "--recipe", str(recipe), f"out={tmp_path / 'run2'}", f"data.path={tmp_path}")
    assert code == 2 and err == f"error: data.path: {tmp_path}: is a directory, expected a JSONL file\n"


def test_non_utf8_data_and_unknown_lora_modules_name_what_to_fix(tmp_path: Path, traj_file: Path) -> None:
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(traj_file.read_bytes() + b'{"id": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=rf"^{bad}:13: .*UTF-8"):
        train(tiny_config(tmp_path / "run", bad, "tabom"), console=False)
    cfg = tiny_config(tmp_path / "run2", traj_file, "tabom")
    cfg.lora.target_modules = ["no_such_proj"]
    with pytest.raises(ValueError, match=r"^lora\.target_modules: .*no_such_proj"):
        train(cfg, console=False)
