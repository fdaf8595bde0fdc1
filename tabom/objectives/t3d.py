"""T3D baseline: trajectory self-distillation with Direct Discriminative Optimization.

(T3D, arXiv 2602.12262.) Per row a trajectory state ``t ~ U{0, ..., s_max}`` is sampled; the
input is that state (tokens decoded before ``t`` visible) and the scored set ``S`` is every
masked response token that was decoded (``step >= t``). With the LoRA model ``p_theta`` and
the frozen reference ``p_ref`` (the same network with the adapter disabled)::

    Delta(y) = mean_{r in S} [ log p_theta(y_r | x_t) - log p_ref(y_r | x_t) ]
    L_ddo    = -logsigmoid(beta * Delta(real)) - alpha * logsigmoid(-beta * Delta(fake))

where ``real`` are the trajectory's tokens and ``fake`` a sample of ``p_ref`` on the same state
(``log(1 - sigmoid(x)) = logsigmoid(-x)``). The path-consistency term averages the CE of the
real tokens over the progressively revealed prefixes of the decode order after ``t``: prefix
``k`` holds the tokens decoded in ``[t, t + k]``; one prefix per decode step that reveals a
token, at most ``path_window`` steps::

    L_path = mean_{k revealing} mean_{r : t <= step_r <= t + k} CE_r
    loss   = mean_rows L_ddo + lambda_path * mean_rows L_path

All logits come from one forward on the state (real and fake share the input). Trainer flow::

    noised = make_t3d_inputs(batch, gen, cfg)
    with torch.no_grad(), adapter_disabled(model):
        ref_logits = model(noised.input_ids, noised.attention_mask, positions=noised.positions)
    noised = attach_reference(noised, ref_logits, gen, cfg)
    out = t3d_loss(model(...same inputs...), noised, cfg)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tabom.objectives.trajectory import max_step, step_window, trajectory_state
from tabom.objectives.types import (
    BatchLike,
    LossOutput,
    NoisedBatch,
    check_batch,
    check_packed,
    gather_packed,
    packed_index,
    trajectory_batch,
    uniform_int,
    unpack,
)


@dataclass
class T3DConfig:
    """Configuration of the T3D baseline (defaults alpha 0.5, beta 0.1, lambda_path 0.2)."""

    alpha: float = 0.5
    """Weight of the fake (reference-sample) term of DDO."""
    beta: float = 0.1
    """Inverse temperature on the log-likelihood ratio."""
    path_lambda: float = 0.2
    """Weight of the path-consistency CE."""
    path_window: int = 32
    """Decode steps after the state that form the progressively revealed prefixes."""
    fake_temperature: float = 1.0
    """Temperature for sampling fake tokens from the reference logits (0: argmax)."""

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "path_lambda", "fake_temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"T3DConfig: {name}: must be >= 0, got {getattr(self, name)}")
        if self.path_window < 1:
            raise ValueError(f"T3DConfig: path_window: must be >= 1, got {self.path_window}")


def sequence_mean_logprob(logits: Tensor, positions: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Per-sequence mean log-probability of ``targets`` over ``mask``.

    Shapes: logits (N, V) packed at ``positions (B, L)``, targets (B, L) long, mask (B, L) bool
    (a subset of ``positions``) -> (B,) float32; rows with an empty mask give 0.
    """
    check_packed(logits, positions)
    index = packed_index(positions, logits.shape[0])  # (N,)
    tgt = gather_packed(targets, index)  # (N,)
    logp = F.log_softmax(logits.float(), dim=-1).gather(1, tgt.unsqueeze(1)).squeeze(1)  # (N,)
    logp_bl = unpack(logp, index, positions.shape)  # (B, L)
    m = mask.to(logp_bl.dtype)  # (B, L)
    return (logp_bl * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def sample_fake_tokens(
    ref_logits: Tensor,
    positions: Tensor,
    fill: Tensor,
    generator: torch.Generator | None,
    temperature: float = 1.0,
) -> Tensor:
    """Sample one token per packed row (Gumbel-max; ``temperature=0``: argmax).

    Shapes: ref_logits (N, V) packed at positions (B, L), fill (B, L) long -> (B, L) long with
    the samples at ``positions`` and ``fill`` elsewhere. No host sync.
    """
    scores = ref_logits.detach().float()  # (N, V)
    if temperature > 0:
        device = generator.device if generator is not None else scores.device
        u = torch.rand(scores.shape, generator=generator, device=device).to(scores.device)
        gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))  # (N, V)
        scores = scores / temperature + gumbel
    sample = scores.argmax(dim=-1)  # (N,)
    index = packed_index(positions, ref_logits.shape[0])  # (N,)
    out = fill.reshape(-1).clone().index_put((index,), sample)
    return out.reshape(fill.shape)


def make_t3d_inputs(
    batch: BatchLike, generator: torch.Generator | None, cfg: T3DConfig | None = None
) -> NoisedBatch:
    """State at ``t ~ U{0..s_max}``; scored positions = masked tokens decoded at or after ``t``."""
    cfg = cfg or T3DConfig()
    check_batch(batch)
    response = batch.response_mask & batch.attention_mask  # (B, L)
    s_max = max_step(batch.steps, response)  # (B,)
    valid = s_max >= 0  # (B,)
    t = uniform_int(torch.zeros_like(s_max), s_max.clamp_min(0), generator)  # (B,)
    t = torch.where(valid, t, torch.zeros_like(t))
    noised_ids, _ = trajectory_state(batch.input_ids, response, batch.steps, t, batch.mask_token_id)
    scored = response & step_window(batch.steps, t, None)  # (B, L)
    return trajectory_batch(batch, response, noised_ids, scored, t, valid)


def attach_reference(
    noised: NoisedBatch,
    ref_logits: Tensor,
    generator: torch.Generator | None,
    cfg: T3DConfig | None = None,
) -> NoisedBatch:
    """Add the reference model's fake tokens and per-sequence mean log-probs to ``noised``.

    ``ref_logits`` (N, V) are the frozen reference's logits at ``noised.positions`` on the same
    input; they are detached here.
    """
    cfg = cfg or T3DConfig()
    ref = ref_logits.detach()
    fake = sample_fake_tokens(ref, noised.positions, noised.targets, generator, cfg.fake_temperature)
    return dataclasses.replace(
        noised,
        fake_tokens=fake,
        ref_logp_real=sequence_mean_logprob(ref, noised.positions, noised.targets, noised.ce_mask),
        ref_logp_fake=sequence_mean_logprob(ref, noised.positions, fake, noised.ce_mask),
    )


def path_consistency(ce: Tensor, steps: Tensor, mask: Tensor, t: Tensor, window: int) -> tuple[Tensor, Tensor]:
    """Mean CE over progressively revealed prefixes of the decode order.

    Shapes: ce (B, L) float per-token CE, steps (B, L) long, mask (B, L) bool, t (B,) long ->
    ``(row_loss (B,), row_used (B,) bool)``. Prefix ``k`` = tokens with ``t <= step <= t + k``;
    only ``k`` whose step reveals a token count; steps ``>= t + window`` are ignored.
    """
    rel = steps - t.unsqueeze(1)  # (B, L)
    inside = mask & (rel >= 0) & (rel < window)  # (B, L)
    idx = rel.clamp(0, window - 1)  # (B, L)
    w = inside.to(ce.dtype)  # (B, L)
    ce_by_step = ce.new_zeros(ce.shape[0], window).scatter_add(1, idx, ce * w)  # (B, K)
    cnt_by_step = w.new_zeros(ce.shape[0], window).scatter_add(1, idx, w)  # (B, K)
    prefix_mean = ce_by_step.cumsum(1) / cnt_by_step.cumsum(1).clamp_min(1.0)  # (B, K)
    reveals = (cnt_by_step > 0).to(ce.dtype)  # (B, K)
    n_prefix = reveals.sum(dim=1)  # (B,)
    return (prefix_mean * reveals).sum(dim=1) / n_prefix.clamp_min(1.0), n_prefix > 0


def t3d_loss(logits: Tensor, noised: NoisedBatch, cfg: T3DConfig | None = None) -> LossOutput:
    """DDO + path-consistency loss from logits (N, V) packed at ``noised.positions``.

    Needs ``noised`` from :func:`attach_reference`. Metrics: ``loss_ddo``, ``loss_path``,
    ``delta_real``, ``delta_fake`` (means over rows), ``n_supervised``.
    """
    cfg = cfg or T3DConfig()
    if noised.fake_tokens is None or noised.ref_logp_real is None or noised.ref_logp_fake is None:
        raise ValueError("t3d_loss: noised: fake_tokens/ref_logp_* missing (call attach_reference first)")
    # 1. per-sequence mean log-ratios of the real and the fake tokens (one forward, two targets)
    logp_real = sequence_mean_logprob(logits, noised.positions, noised.targets, noised.ce_mask)  # (B,)
    logp_fake = sequence_mean_logprob(logits, noised.positions, noised.fake_tokens, noised.ce_mask)  # (B,)
    delta_real = logp_real - noised.ref_logp_real.float()  # (B,)
    delta_fake = logp_fake - noised.ref_logp_fake.float()  # (B,)
    # 2. DDO: -log s(b d_real) - alpha log(1 - s(b d_fake)), mean over rows with scored tokens
    ddo_row = -F.logsigmoid(cfg.beta * delta_real) - cfg.alpha * F.logsigmoid(-cfg.beta * delta_fake)
    rows = (noised.ce_mask.any(dim=1)).to(ddo_row.dtype)  # (B,)
    n_rows = rows.sum().clamp_min(1.0)
    loss_ddo = (ddo_row * rows).sum() / n_rows
    # 3. path consistency: CE of the real tokens over revealed prefixes of the decode order
    index = packed_index(noised.positions, logits.shape[0])  # (N,)
    ce_packed = F.cross_entropy(logits.float(), gather_packed(noised.targets, index), reduction="none")
    ce = unpack(ce_packed, index, noised.positions.shape)  # (B, L)
    path_row, path_used = path_consistency(ce, noised.steps, noised.ce_mask, noised.cut, cfg.path_window)
    path_used_f = path_used.to(path_row.dtype)
    loss_path = (path_row * path_used_f).sum() / path_used_f.sum().clamp_min(1.0)
    loss = loss_ddo + cfg.path_lambda * loss_path
    metrics = {
        "loss_ddo": loss_ddo.detach(),
        "loss_path": loss_path.detach(),
        "delta_real": ((delta_real * rows).sum() / n_rows).detach(),
        "delta_fake": ((delta_fake * rows).sum() / n_rows).detach(),
        "n_supervised": noised.ce_mask.sum().to(torch.float32),
    }
    return LossOutput(loss=loss, metrics=metrics)

