"""Recipes by composition (tabom.methods): the four 7B recipes x the paper's five trained methods,
switching `objective.name`, errors that name the line, and the global-batch note of the trainer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabom.config import ConfigError, load_recipe
from tabom.training.trainer import global_batch_note

SEVEN_B = ["dream_prm12k", "dream_ling_coder", "llada_prm12k", "llada_ling_coder"]
OBJECTIVE = {"tabom": "tabom", "sft_gt": "nelbo", "sft_sd": "nelbo", "dinfer": "dinfer", "t3d": "t3d"}


@pytest.mark.parametrize("recipe", SEVEN_B)
@pytest.mark.parametrize("method", sorted(OBJECTIVE))
def test_every_7b_recipe_composes_with_every_method(recipe: str, method: str) -> None:
    base = load_recipe(recipe)
    cfg = load_recipe(recipe, [f"method={method}"])
    assert cfg.objective.name == OBJECTIVE[method]
    assert (cfg.model, cfg.lora, cfg.epochs, cfg.batch_size, cfg.paper_global_batch) == (
        base.model, base.lora, base.epochs, base.batch_size, 32)
    assert cfg.data.format == ("prompts" if method == "sft_gt" else "trajectories")
    if method == "tabom":
        assert cfg == base
    else:
        assert cfg.optim.lr == pytest.approx(2e-5)  # the paper's, for every baseline
        assert not set(cfg.objective.params) & {"margin", "rank_lambda", "ce_window"}


def test_switching_objective_name_keeps_only_its_fields() -> None:
    """`objective.name=nelbo` on a TABOM recipe used to fail on ce_window; explicit fields stay checked."""
    assert load_recipe("dream_prm12k", ["objective.name=nelbo"]).objective.params == {}
    t3d = load_recipe("llada_prm12k", ["objective.name=t3d", "objective.alpha=0.7"])
    assert t3d.objective.name == "t3d" and t3d.objective.params == {"alpha": 0.7}
    with pytest.raises(ConfigError, match=r"override objective.margin=0.2: objective.margin: unknown field of objective 'nelbo'"):
        load_recipe("dream_prm12k", ["objective.name=nelbo", "objective.margin=0.2"])


def test_method_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"override method=sft: method: 'sft' is not one of tabom, dinfer, sft_gt, sft_sd, t3d"):
        load_recipe("dream_prm12k", ["method=sft"])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "# a recipe\n#   tabom train --recipe r.yaml\nmodel: tiny\ndata:\n  path: t.jsonl\n"
        "method: mine\nmethods:\n  mine:\n    objective:\n      name: t3d\n      alpah: 1.0\n"
    )
    with pytest.raises(ConfigError, match=rf"{recipe}:11: objective.alpah: unknown field of objective 't3d' \(did you mean objective.alpha\?\)"):
        load_recipe(recipe)


def test_global_batch_note_warns_off_the_paper_value() -> None:
    cfg = load_recipe("dream_prm12k")
    line, warning = global_batch_note(1, cfg)
    assert line == "effective global batch: 1 process(es) x 4 rows x 1 accumulation = 4"
    assert warning == "warning: the recipe declares the paper's global batch 32, this run's is 4; grad_accum=8 gives 32"
    assert global_batch_note(8, cfg) == ("effective global batch: 8 process(es) x 4 rows x 1 accumulation = 32", None)
    assert global_batch_note(1, load_recipe("dream_prm12k", ["grad_accum=8"]))[1] is None
    assert global_batch_note(1, load_recipe("tiny_tabom"))[1] is None  # no declared value, no warning
