"""Recipes and overrides: every shipped YAML loads and validates; bad values name file, line, key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabom.config import (
    ConfigError,
    TrainConfig,
    load_recipe,
    parse_override,
    resolve_recipe_path,
    to_yaml,
)

ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
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


def test_package_recipes_match_repo_recipes() -> None:
    """`--recipe NAME` reads the packaged copy; it must equal recipes/NAME.yaml."""
    for path in RECIPES:
        packaged = ROOT / "tabom" / "recipes" / path.name
        assert packaged.read_text() == path.read_text(), path.name


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
