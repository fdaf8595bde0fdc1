"""The benchmark's two loss heads (bench/loss_head.py) agree in value and gradient."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench" / "loss_head.py"


def _load():
    spec = importlib.util.spec_from_file_location("loss_head_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("recompute", [False, True])
def test_tabom_head_matches_release_head(recompute):
    bench = _load()
    args = argparse.Namespace(batch=3, resp_len=24, hidden=16, vocab=64, window=6, margin=0.2,
                              lam=1.5, chunk=5, recompute=recompute, device="cpu", dtype="float32")
    inp = bench.build_inputs(args)
    inp["hidden"] = inp["hidden"] * 30  # spread entropies so some hinges are inactive
    grads, losses = [], []
    for fn in (bench.release_head, bench.tabom_head):
        h = inp["hidden"].clone().requires_grad_(True)
        loss = fn({**inp, "hidden": h}, args)
        loss.backward()
        losses.append(loss.item())
        grads.append(h.grad)
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert torch.allclose(grads[1], grads[0], atol=1e-5, rtol=1e-3)
