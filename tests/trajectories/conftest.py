"""Shared fixtures for the trajectory tests: a small valid trajectory and JSONL writing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tabom.trajectories.schema import Trajectory


def _make_traj(traj_id: str = "t0", **overrides: Any) -> Trajectory:
    """A valid 4-token trajectory decoded one token per step (steps == gen_length == 4).

    Response ids [5, 6, 2, 2] with EOS id 2: two real tokens, then EOS padding.
    """
    fields: dict[str, Any] = dict(
        id=traj_id,
        prompt="What is 1+1?",
        response="ab",
        prompt_token_ids=[1, 7, 8],
        response_token_ids=[5, 6, 2, 2],
        decoding_order=[1, 0, 2, 3],
        method="entropy",
        data_source="toy",
        correct=True,
        model="tiny",
        settings=dict(
            gen_length=4, steps=4, block_length=None, temperature=0.0, top_p=None, top_k=None,
            tokens_per_step=None, seed=0,
        ),
    )
    fields.update(overrides)
    return Trajectory(**fields)


def _write_lines(path: Path, objs: list[Any]) -> Path:
    """Write each item as one line: dicts as JSON, strings verbatim."""
    with open(path, "w", encoding="utf-8") as f:
        for obj in objs:
            f.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    return path


@pytest.fixture
def make_traj() -> Callable[..., Trajectory]:
    """Factory of valid trajectories: `make_traj(id, **field_overrides)`."""
    return _make_traj


@pytest.fixture
def write_lines() -> Callable[[Path, list[Any]], Path]:
    """Writer of JSONL test files: `write_lines(path, [obj or raw str, ...])`."""
    return _write_lines


@pytest.fixture
def traj_obj() -> dict[str, Any]:
    """The JSON object of `make_traj()`."""
    return _make_traj().to_json()
