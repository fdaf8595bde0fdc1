"""Fixtures of the reproduction tests: a random test-sized tiny model on disk and one shrunk
`--quick`-shaped reproduction of it (4 training prompts and 2 test problems per family, 2 optimizer
steps per run, 24-token responses), shared by the end-to-end, resume and CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

SHAPE: dict[str, int] = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                         "num_key_value_heads": 2, "intermediate_size": 64}
KNOBS: dict[str, Any] = {"n_train": 4, "n_eval": 2, "n_tds": 2, "train_steps": 2, "gen_length": 24,
                         "decode_batch": 16, "keep": "all"}
"""24 tokens: the tiny recipes' 16-step windows need trajectories longer than 16 steps. keep=all:
a random model solves nothing, so every trajectory is kept (the yield is still reported)."""


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tabom.models import build_tiny, save

    return save(build_tiny(seed=0, **SHAPE), tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def quick_plan(tiny_dir: Path) -> Any:
    from tabom.reproduce.plan import make_plan

    return make_plan(True, model=str(tiny_dir), **KNOBS)


@pytest.fixture(scope="session")
def quick_run(quick_plan: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    """(the Reproduction, its results) after one complete shrunk run."""
    from tabom.reproduce.pipeline import Reproduction

    torch.set_num_threads(1)
    repro = Reproduction(quick_plan, tmp_path_factory.mktemp("repro"))
    return repro, repro.run()
