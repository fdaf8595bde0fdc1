"""Helpers of the trainer tests: the tiny model shape, learnable synthetic trajectories, a config.

The synthetic trajectories are learnable on purpose: the response is a fixed function of the
prompt (the prompt's letters reversed) and the decode order is left to right with neighbours
swapped, so a few optimizer steps on a 2-layer, 32-dim model lower every objective's loss.
Imported by name (`from train_helpers import SHAPE`): a unique module name, unlike `conftest`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from tabom.config import DataConfig, ObjectiveConfig, TrainConfig
from tabom.models.char_tokenizer import CharTokenizer

SHAPE: dict[str, Any] = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64)
GEN = 16


def trajectory_obj(i: int, rng: random.Random, gen_length: int = GEN) -> dict[str, Any]:
    """One valid trajectory JSON object (steps == gen_length: one token per step)."""
    tok = CharTokenizer()
    word = "".join(rng.choice("abcdef") for _ in range(rng.randint(3, 6)))
    answer = word[::-1]
    prompt_ids = tok.encode(word, add_special_tokens=True)
    body = tok.encode(answer, add_special_tokens=False)
    response = body + [tok.eos_token_id] * (gen_length - len(body))
    order = list(range(gen_length))
    for p in range(0, gen_length - 1, 2):
        if rng.random() < 0.5:
            order[p], order[p + 1] = order[p + 1], order[p]
    return {
        "id": f"t{i}", "prompt": word, "response": answer, "prompt_token_ids": prompt_ids,
        "response_token_ids": response, "decoding_order": order, "method": "entropy",
        "data_source": "synthetic", "correct": True, "model": "tiny",
        "settings": {"gen_length": gen_length, "steps": gen_length, "block_length": None,
                     "temperature": 0.0, "top_p": None, "top_k": None, "tokens_per_step": None,
                     "seed": 0},
    }


def write_trajectories(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(trajectory_obj(i, rng)) + "\n")
    return path


def tiny_config(out: Path, data_path: Path, objective: str = "tabom", **overrides: Any) -> TrainConfig:
    """A TrainConfig on a 2-layer random tiny model with test-sized windows (W = M = 4)."""
    params: dict[str, Any] = {
        "nelbo": {}, "trajectory": {"ce_window": 4}, "tabom": {"ce_window": 4, "rank_window": 4},
        "dinfer": {"max_span": 4}, "t3d": {"path_window": 4},
    }[objective]
    base: dict[str, Any] = dict(
        model="tiny-random", model_shape=dict(SHAPE), out=str(out), seed=0, epochs=2, batch_size=4,
        report_to=[], log_every=1, threads=1,
        data=DataConfig(path=str(data_path), gen_length=GEN),
        objective=ObjectiveConfig(name=objective, params=params),
    )
    base.update(overrides)
    cfg = TrainConfig(**base)
    cfg.optim.lr = 5e-3
    cfg.optim.warmup_steps = 1
    return cfg
