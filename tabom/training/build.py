"""What a training run is made of, built from its config: the model (+ LoRA), optimizer, schedule.

    model = build_model(cfg)                       # DiffusionLM, LoRA attached when cfg.lora.enabled
    optimizer = build_optimizer(model, cfg.optim)  # AdamW over the trainable parameters
    scheduler = build_scheduler(optimizer, cfg.optim, total_steps)

The learning rate is ``lr * lr_factor(step)``: linear warm-up from ``1 / warmup`` to 1 over
``warmup_steps`` optimizer steps, then a cosine from 1 down to ``min_lr_ratio`` at
``total_steps`` (or constant). Weight decay applies to matrices only (not norms or biases).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from tabom.config import OptimConfig, TrainConfig
from tabom.models.diffusion_lm import DiffusionLM


def lr_factor(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """Multiplier of `cfg.lr` at optimizer step `step` (0-based).

    Example (warmup 2, total 6, cosine, min 0): steps 0..5 -> 0.5, 1.0, 1.0, 0.854, 0.5, 0.146.
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, total_steps - cfg.warmup_steps)
    frac = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac))


def build_model(cfg: TrainConfig) -> DiffusionLM:
    """Load (or, for `tiny-random`, build) the model on CPU; attach LoRA; set checkpointing."""
    from tabom.models.loading import load, resolve_dtype
    from tabom.models.tiny import build_tiny

    if cfg.model == "tiny-random":
        model = build_tiny(seed=cfg.seed, **cfg.model_shape)
        model = model.to(resolve_dtype(cfg.dtype, "cuda" if torch.cuda.is_available() else "cpu"))
    else:
        if cfg.model_shape:
            raise ValueError("model_shape: only used with model: tiny-random")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load(cfg.model, device="cpu", dtype=resolve_dtype(cfg.dtype, device))
    if cfg.gradient_checkpointing:
        newer = getattr(model.backbone, "activation_checkpointing_enable", None)  # transformers >= 5.25
        if newer is not None:
            newer({"use_reentrant": False})
        else:
            model.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.backbone.config.use_cache = False
    if cfg.lora.enabled:
        from tabom.models.adapters import attach_lora

        torch.manual_seed(cfg.seed)  # LoRA A init draws from the global generator
        try:
            model = attach_lora(model, r=cfg.lora.r, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                                target_modules=cfg.lora.target_modules)
        except ValueError as exc:  # PEFT: no module of the model has such a name
            raise ValueError(f"lora.target_modules: {exc}") from None
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    return model


def frozen_copy(model: DiffusionLM) -> DiffusionLM:
    """A detached, frozen deep copy (the T3D reference when the whole model is trained)."""
    ref = copy.deepcopy(model).eval()
    for param in ref.parameters():
        param.requires_grad_(False)
    return ref


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad`` set, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on parameters with >= 2 dims, none on norms and biases."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters (check lora.target_modules)")
    decay = [p for _, p in params if p.dim() >= 2]
    no_decay = [p for _, p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR applying :func:`lr_factor`; step it once per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg, total_steps))


def resolve_precision(precision: str, device: str | None = None) -> str:
    """accelerate's mixed_precision: `auto` is bf16 on a CUDA device that has it, else no autocast.

    `device` ("cpu", "cuda:1", ...) is where the model runs when the caller picks it; without it,
    any visible CUDA device counts (accelerate places the model there).
    """
    if precision == "bf16":
        return "bf16"
    if precision == "fp32":
        return "no"
    on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    return "bf16" if on_cuda and torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
