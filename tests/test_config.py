"""Recipes and overrides: every shipped YAML loads and validates; bad values name file, line, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabom.config import (
    ConfigError,
    DataConfig,
    LoraConfig,
    ObjectiveConfig,
    OptimConfig,
    TrainConfig,
    load_recipe,
    parse_override,
    resolve_recipe_path,
    to_yaml,
)
from tabom.typed_yaml import FieldError, load_yaml

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "tabom" / "recipes").glob("*.yaml"))
PAPER = {  # name -> (rank_lambda, margin, lr): the release's hyperparameters
    "dream_prm12k": (1.0, 0.1, 2e-5),
    "dream_ling_coder": (2.0, 0.1, 1e-4),
    "llada_prm12k": (1.0, 0.2, 2e-5),
    "llada_ling_coder": (1.0, 0.3, 2e-5),
}
TINY = ["tiny_sft_gt", "tiny_sft_sd", "tiny_trajectory", "tiny_tabom", "tiny_dinfer", "tiny_t3d"]


def test_every_expected_recipe_ships() -> None:
    names = {p.stem for p in RECIPES}
    assert set(PAPER) | set(TINY) <= names


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_loads_validates_and_documents_itself(path: Path, tmp_path: Path) -> None:
    """Each recipe opens with a comment holding a `tabom train` command, loads, and round-trips."""
    text = path.read_text()
    assert text.startswith("# ")
    header = text.split("\n\n")[0]
    assert "tabom train --recipe" in header
    cfg = load_recipe(path)
    assert isinstance(cfg, TrainConfig)
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(to_yaml(cfg))
    assert load_recipe(resolved) == cfg


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_recipes_carry_release_hyperparameters(name: str) -> None:
    cfg = load_recipe(name)
    lam, margin, lr = PAPER[name]
    p = cfg.objective.params
    assert cfg.objective.name == "tabom"
    assert (p["rank_lambda"], p["margin"], p["ce_window"], p["rank_window"]) == (lam, margin, 32, 32)
    assert cfg.optim.lr == pytest.approx(lr)
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.target_modules) == (16, 16.0, ["q_proj", "v_proj"])
    assert (cfg.optim.warmup_steps, cfg.epochs, cfg.batch_size, cfg.data.gen_length) == (50, 5, 4, 256)
    assert cfg.optim.weight_decay == 0.01 and cfg.optim.max_grad_norm == 1.0


def test_recipes_have_one_copy() -> None:
    """`--recipe NAME` reads tabom/recipes/NAME.yaml, the only copy: no second recipes folder."""
    assert RECIPES and not (ROOT / "recipes").exists()
    for path in RECIPES:
        assert resolve_recipe_path(path.stem) == path


def test_recipe_by_name_and_unknown_name() -> None:
    assert resolve_recipe_path("tiny_tabom").name == "tiny_tabom.yaml"
    with pytest.raises(FileNotFoundError, match="no_such_recipe.*tiny_tabom"):
        resolve_recipe_path("no_such_recipe")


def test_overrides_set_nested_and_objective_fields() -> None:
    cfg = load_recipe("tiny_tabom", ["optim.lr=5e-4", "objective.margin=0.3", "lora.r=8",
                                      "max_steps=7", "lora.target_modules=q_proj,k_proj",
                                      "model_shape.hidden_size=32", "model=tiny-random"])
    assert cfg.optim.lr == 5e-4  # YAML 1.1 reads "5e-4" as text: coerced for a float field
    assert cfg.objective.params["margin"] == 0.3
    assert (cfg.lora.r, cfg.max_steps) == (8, 7)
    assert cfg.lora.target_modules == ["q_proj", "k_proj"]
    assert cfg.model_shape == {"hidden_size": 32}


def test_override_type_error_names_key() -> None:
    with pytest.raises(ConfigError, match=r"lora\.r: expected int, got str 'big'"):
        load_recipe("tiny_tabom", ["lora.r=big"])
    with pytest.raises(ConfigError, match=r"objective\.margin: expected float, got str 'wide'"):
        load_recipe("tiny_tabom", ["objective.margin=wide"])
    with pytest.raises(ConfigError, match=r"precision: expected one of auto, bf16, fp32"):
        load_recipe("tiny_tabom", ["precision=fp8"])


def test_unknown_keys_suggest_close_match() -> None:
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown key \(did you mean optim\.lr\?\)"):
        load_recipe("tiny_tabom", ["optim.lrr=1"])
    with pytest.raises(ConfigError, match=r"objective\.margn: unknown field of objective 'tabom' \(did you mean objective\.margin\?\)"):
        load_recipe("tiny_tabom", ["objective.margn=0.1"])
    with pytest.raises(ConfigError, match="objective.name: .*unknown name 'nope'"):
        load_recipe("tiny_tabom", ["objective.name=nope"])


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("optim.lr")


def test_recipe_error_names_file_and_line(tmp_path: Path) -> None:
    """The bad value sits on line 4 of the file (line 1 is the comment)."""
    path = tmp_path / "bad.yaml"
    path.write_text("# a comment\ndata:\n  task: math_chain\n  gen_length: long\n")
    with pytest.raises(ConfigError, match=rf"{path}:4: data\.gen_length: expected int, got str 'long'"):
        load_recipe(path)


def test_validation_errors_from_post_init(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("data:\n  task: math_chain\nobjective:\n  name: tabom\n")
    with pytest.raises(ConfigError, match="needs trajectories"):
        load_recipe(path)
    with pytest.raises(ConfigError, match="exactly one of data.path"):
        load_recipe(None, ["data.gen_length=64"])
    with pytest.raises(ConfigError, match="rank_window: must be >= 2"):
        load_recipe("tiny_tabom", ["objective.rank_window=1"])
    with pytest.raises(ConfigError, match="optim.lr: must be > 0"):
        load_recipe("tiny_tabom", ["optim.lr=0"])


# --------------------------------------------------------------------------- ranges (issue 19)
@pytest.mark.parametrize("override, message", [
    ("optim.lr=inf", "optim.lr: must be a finite number, got inf"),
    ("optim.lr=-1e-3", "optim.lr: must be > 0, got -0.001"),
    ("objective.rank_lambda=nan", "objective.rank_lambda: must be a finite number, got nan"),
    ("objective.rank_lambda=-1", "objective.rank_lambda: must be >= 0, got -1.0"),
    ("lora.alpha=nan", "lora.alpha: must be a finite number, got nan"),
    ("lora.alpha=0", "lora.alpha: must be > 0, got 0.0"),
    ("lora.dropout=1", "lora.dropout: must lie in [0, 1), got 1.0"),
    ("optim.max_grad_norm=nan", "optim.max_grad_norm: must be a finite number, got nan"),
    ("optim.weight_decay=nan", "optim.weight_decay: must be a finite number, got nan"),
    ("optim.eps=-1", "optim.eps: must be > 0, got -1.0"),
    ("optim.betas=[0.9,.nan]", "optim.betas[1]: must be a finite number, got nan"),
    ("threads=-4", "threads: must lie in [0, 4096], got -4"),
    ("seed=-1", "seed: must lie in [0, 4294967295], got -1"),
    ("batch_size=0", "batch_size: must lie in [1, 1048576], got 0"),
    ("keep_step_checkpoints=0", "keep_step_checkpoints: must be >= 1, got 0"),
    ("data.gen_length=1", "data.gen_length: must lie in [2, 1048576], got 1"),
    ("model_shape.hidden_size=0", "model_shape.hidden_size: must lie in [1, 1048576], got 0"),
    ("model_shape.hidden_size=34", "model_shape.hidden_size: 34 is not 4 attention heads of an even width (use a multiple of 8)"),
    ("model_shape.rope_theta=.nan", "model_shape.rope_theta: must be a finite number, got nan"),
])
def test_every_number_is_range_checked_and_an_override_is_named(override: str, message: str) -> None:
    """The issue's values: each is refused, and the error names the override that set it."""
    with pytest.raises(ConfigError) as info:
        load_recipe("tiny_tabom", [override])
    assert str(info.value) == f"override {override}: {message}"


def test_a_recipe_range_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("data:\n  task: math_chain\noptim:\n  lr: .inf\nlora:\n  dropout: 1.5\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: optim\.lr: must be a finite number, got inf$"):
        load_recipe(path)
    path.write_text("data:\n  task: math_chain\nlora:\n  dropout: 1.5\nthreads: 10000\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: lora\.dropout: must lie in \[0, 1\), got 1\.5$"):
        load_recipe(path)
    path.write_text("data:\n  task: math_chain\nobjective:\n  name: nelbo\n  eps: 2.0\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5: objective\.eps: must lie in \[0, 1\)"):
        load_recipe(path)


def test_python_api_is_held_to_the_same_checks() -> None:
    """Dataclasses built in Python and fields assigned afterwards are checked too (cfg.check())."""
    with pytest.raises(FieldError, match=r"^optim\.lr: must be a finite number, got inf$"):
        OptimConfig(lr=float("inf"))
    with pytest.raises(FieldError, match=r"^lora\.r: expected int, got str 'big'$"):
        LoraConfig(r="big")  # type: ignore[arg-type]
    with pytest.raises(FieldError, match=r"^threads: must lie in \[0, 4096\], got -4$"):
        TrainConfig(data=DataConfig(task="math_chain"), objective=ObjectiveConfig(name="nelbo"), threads=-4)
    cfg = TrainConfig(data=DataConfig(task="math_chain"), objective=ObjectiveConfig(name="nelbo"))
    cfg.optim.weight_decay = float("nan")
    with pytest.raises(FieldError, match=r"^optim\.weight_decay: must be a finite number, got nan$"):
        cfg.check()


def test_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """A few hundred bytes of nested aliases (billions of nodes expanded) fail before expanding."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ndata: {task: math_chain}\n")
    assert path.stat().st_size < 800
    with pytest.raises(ConfigError, match=rf"^{path}:1: not valid YAML \(YAML anchors and aliases"):
        load_recipe(path)
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_recipe(None, ["data.task=math_chain", "model_shape=&a {x: 1}"])
    assert load_yaml("a: [1, {b: 2}]") == {"a": [1, {"b": 2}]}
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml("[" * 50_000, "deep.yaml")


def test_a_folder_or_non_utf8_recipe_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{tmp_path}: is a directory, expected a recipe YAML file"):
        load_recipe(tmp_path)
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"data:\n  task: math_chain\nmodel: caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: not UTF-8 text \(byte 0xe9 at column 11\)$"):
        load_recipe(path)


def test_model_shape_names_the_unknown_field() -> None:
    """An unknown field was a TypeError from TinyConfig deep inside the run."""
    with pytest.raises(ConfigError, match=r"^override model_shape\.bogus=1: model_shape\.bogus: unknown field \(known: hidden_size,"):
        load_recipe("tiny_tabom", ["model=tiny-random", "model_shape.bogus=1"])
