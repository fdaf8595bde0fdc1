"""The paper recipes' LoRA settings equal the authors' published adapter configs.

The configs are real files from the release (`../shared/reference/release_adapters/`, see its
README); the test says so when it skips because that folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tabom.config import load_recipe

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ROOT.parent / "shared" / "reference" / "release_adapters"
RECIPES = ["dream_prm12k", "dream_ling_coder", "llada_prm12k", "llada_ling_coder"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_lora_matches_the_published_adapter(name: str) -> None:
    published = ADAPTERS / f"{name}.adapter_config.json"
    if not published.exists():
        pytest.skip(f"the authors' adapter configs are not here ({published}); the check needs ../shared/reference")
    cfg = json.loads(published.read_text())
    lora = load_recipe(name).lora
    assert lora.enabled
    assert (lora.r, lora.alpha, lora.dropout) == (cfg["r"], cfg["lora_alpha"], cfg["lora_dropout"])
    assert sorted(lora.target_modules) == sorted(cfg["target_modules"])
