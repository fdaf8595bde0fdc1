"""Trajectory Discrimination Score (TDS, Section 4.2, Eq. 10-11): how differently a model is unsure
about the masked tokens at each decoding step.

At step t of trajectory tau, take the still-masked response positions, leaving out positions after
the first EOS of the final decoded sequence; TDS(t) is the population variance of their predictive
entropies, averaged over trajectories. A row with fewer than two such positions at a step is
skipped there (its variance is undefined or zero by construction). The scalar is the mean of the
curve over the steps where some row counted.

    curve, counts = tds_curve(result.entropy, result.tokens, model.eos_token_id)   # (S,), (S,)
    res = run_tds(model, prompts, DecodeSettings(gen_length=64), label="base")
    write_csv([res], "tds.csv"); plot_curves([res], "tds.png")
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch


def tds_curve(entropy: torch.Tensor, tokens: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step TDS over a batch of trajectories.

    Args:
        entropy: ``(B, S, G)`` entropy of every still-masked response position at each step
            (NaN where the position was not masked), as ``DecodeResult.entropy``.
        tokens: ``(B, G)`` final decoded responses.
        eos_id: the EOS token id.

    Returns:
        ``curve (S,)`` float64, the mean over counted rows of the population variance at each step
        (NaN where no row counted), and ``counts (S,)`` long, how many rows counted.
    """
    shapes_ok = entropy.dim() == 3 and tokens.dim() == 2 and entropy.shape[0] == tokens.shape[0]
    if not shapes_ok or entropy.shape[2] != tokens.shape[1]:
        raise ValueError(
            f"tds_curve: entropy {tuple(entropy.shape)} and tokens {tuple(tokens.shape)} "
            "do not match (B, S, G) and (B, G)"
        )
    return tds_reduce(*tds_rows(entropy, tokens, eos_id))


def tds_rows(entropy: torch.Tensor, tokens: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per trajectory and step: ``var (B, S)`` float64 (population variance of the counted entropies)
    and ``counted (B, S)`` bool (at least two positions counted); :func:`tds_curve`'s first half."""
    ent = entropy.to(torch.float64)  # (B, S, G)
    gen = tokens.shape[1]
    is_eos = tokens == eos_id  # (B, G)
    first_eos = torch.where(is_eos.any(dim=1), is_eos.long().argmax(dim=1), torch.full_like(tokens[:, 0], gen))  # (B,)
    before_eos = torch.arange(gen, device=tokens.device).unsqueeze(0) <= first_eos.unsqueeze(1)  # (B, G)
    valid = ~torch.isnan(ent) & before_eos.unsqueeze(1)  # (B, S, G)
    n = valid.sum(dim=2)  # (B, S)
    safe_n = n.clamp(min=1).to(torch.float64)
    values = torch.where(valid, ent, torch.zeros_like(ent))  # (B, S, G)
    mean = values.sum(dim=2) / safe_n  # (B, S)
    sq = torch.where(valid, (ent - mean.unsqueeze(2)) ** 2, torch.zeros_like(ent))  # (B, S, G)
    var = sq.sum(dim=2) / safe_n  # (B, S) population variance
    counted = n >= 2  # (B, S)
    return var, counted


def tds_reduce(var: torch.Tensor, counted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``var (B, S)`` float64 per-row variances and ``counted (B, S)`` bool -> ``(curve (S,), counts (S,))``."""
    counts = counted.sum(dim=0)  # (S,)
    total = torch.where(counted, var, torch.zeros_like(var)).sum(dim=0)  # (S,)
    curve = torch.where(counts > 0, total / counts.clamp(min=1), torch.full_like(total, float("nan")))
    return curve, counts


def tds_scalar(curve: torch.Tensor) -> float:
    """The mean of the curve over steps where it is defined (NaN when it never is)."""
    defined = curve[~torch.isnan(curve)]
    return float(defined.mean()) if defined.numel() else float("nan")


@dataclass
class TDSResult:
    """One model's TDS: the curve, the rows counted at each step, the scalar."""

    label: str
    curve: list[float]
    counts: list[int]
    scalar: float
    n: int
    settings: dict[str, Any]


def run_tds(model: Any, prompts: Sequence[str], settings: Any, *, label: str, progress: bool = False,
            where: Sequence[str] | None = None, shard: Any = None) -> TDSResult:
    """Decode ``prompts`` with ``record_entropy`` and the model's default strategy; return its TDS.

    ``settings`` is a :class:`tabom.eval.evaluate.DecodeSettings`; its strategy, when None, is the
    model's default (what the paper measures). A prompt that does not fit the model's positions
    with ``gen_length`` raises ``ValueError`` before decoding, naming ``where[i]`` (FILE:LINE or
    the task and problem; default ``prompt i``).

    With ``shard`` (a :class:`tabom.eval.sharding.Shard` of several processes) each rank decodes
    whole batches of the ones one process decodes (prompts sorted by length, cut by
    ``batch_size``), the per-row variances are gathered and reduced in prompt order: at
    temperature 0 every rank returns the one-process result exactly.
    """
    from tabom.decoding import generate  # noqa: PLC0415
    from tabom.trajectories.prompts import check_prompt_fits  # noqa: PLC0415

    s = settings.resolved(model)
    gen = torch.Generator(device="cpu").manual_seed(s.seed)
    ids = [model.encode_prompt(p) for p in prompts]
    for i, row in enumerate(ids):
        check_prompt_fits(model, len(row), s.gen_length, where[i] if where is not None else f"prompt {i}")
    knobs = {"settings": s, "record_entropy": True}  # the one DecodeSettings, threshold and cache included
    if shard is not None and shard.world > 1:
        curve, counts = _sharded_curve(model, ids, knobs, s.batch_size, s.seed, shard)
    else:
        result = generate(model, ids, generator=gen, batch_size=s.batch_size, progress=progress, **knobs)
        assert result.entropy is not None
        curve, counts = tds_curve(result.entropy, result.tokens, model.eos_token_id)
    return TDSResult(label, [float(x) for x in curve], [int(c) for c in counts], tds_scalar(curve),
                     len(prompts), asdict(s))


def _sharded_curve(model: Any, ids: list[list[int]], knobs: dict[str, Any], batch_size: int, seed: int,
                   shard: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's batches decoded, every rank's per-row (variance, counted) gathered, reduced in order."""
    from tabom.decoding import generate  # noqa: PLC0415
    from tabom.eval.sharding import merge_in_order  # noqa: PLC0415

    shard.check_fits(len(ids), "tds prompts")
    by_length = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # the engine's own batching
    size = batch_size if -(-len(ids) // batch_size) >= shard.world else -(-len(ids) // shard.world)
    batches = [by_length[i:i + size] for i in range(0, len(ids), size)]
    mine = shard.take([sum(len(ids[i]) for i in b) for b in batches])
    rows: list[tuple[int, tuple[list[float], list[bool]]]] = []
    for b in mine:
        gen = torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + batches[b][0])
        result = generate(model, [ids[i] for i in batches[b]], generator=gen, batch_size=len(batches[b]), **knobs)
        assert result.entropy is not None
        var, counted = tds_rows(result.entropy, result.tokens, model.eos_token_id)  # (b, S)
        rows += [(i, (var[k].tolist(), counted[k].tolist())) for k, i in enumerate(batches[b])]
    ordered = merge_in_order(shard.all_gather(rows))
    span = max(len(v) for v, _ in ordered)
    var = torch.tensor([v + [0.0] * (span - len(v)) for v, _ in ordered], dtype=torch.float64)  # (B, S)
    counted = torch.tensor([c + [False] * (span - len(c)) for _, c in ordered], dtype=torch.bool)  # (B, S)
    return tds_reduce(var, counted)


def write_csv(results: Sequence[TDSResult], path: str | Path) -> Path:
    """Long format: ``model,step,tds,count`` (empty tds where no row counted), written atomically."""
    from tabom.outputs import write_text_atomic  # noqa: PLC0415

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["model", "step", "tds", "count"])
    for r in results:
        for step, (v, c) in enumerate(zip(r.curve, r.counts)):
            writer.writerow([r.label, step, "" if math.isnan(v) else f"{v:.6g}", c])
    return write_text_atomic(out, buffer.getvalue())


def plot_curves(results: Sequence[TDSResult], path: str | Path, title: str = "Trajectory Discrimination Score") -> Path:
    """One line per model, TDS against decoding step (as the paper's Figure 2), saved as PNG.

    Drawn to a temporary PNG beside ``path`` and moved over it, so a crash leaves no torn image.
    """
    from tabom.plotting import line_plot  # noqa: PLC0415

    lines = []
    for r in results:
        steps = [i for i, v in enumerate(r.curve) if not math.isnan(v)]
        lines.append((steps, [r.curve[i] for i in steps], f"{r.label} (TDS {r.scalar:.3g})", {"linewidth": 1.6}))
    out = Path(path)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    line_plot(tmp, lines, xlabel="decoding step", ylabel="variance of masked-token entropy", title=title)
    os.replace(tmp, out)
    return out
