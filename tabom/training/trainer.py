"""The training loop behind `tabom train`: `train(cfg) -> run folder`.

    from tabom.config import load_recipe
    from tabom.training.trainer import train
    run = train(load_recipe("tiny_tabom", ["out=runs/t1"]))          # run/final/ holds the adapter
    run = train(cfg, resume=True)                                   # continue a killed run

The run is four short functions, in the manner of torchtune's recipes:

    run = setup(cfg, resume)       # Run: model (+ LoRA, sharded under parallel=fsdp), data, optimizer, schedule
    pos = restore(run)             # Position: from the checkpoint resumed from, or the start
    logger = open_logger(run, pos, console)
    pos = run_epochs(run, pos, logger)    # each step: optimizer_step(run, micro_batches, step)

One process or several through accelerate (DDP) or FSDP2 (`tabom.training.parallel`): every
rank draws the same per-epoch order (`tabom.training.sampling`) and takes its own slice of each
global batch (`tabom.training.data`). A step is `grad_accum` micro-batches of `loss_step`
(`tabom.training.step`), then clipping, AdamW and the schedule. Checkpoints (`tabom.training.checkpoint`): `epoch_k/` after every epoch, `step_N/`
every `save_every` steps when asked, `final/` at the end. With `resume=True` the newest complete
checkpoint restores weights, optimizer, schedule, every rank's RNGs and the position in the data
order, so on CPU the resumed run ends with the same weights as an uninterrupted one.

Refusals, each one `ValueError` naming what to change: a config out of range (`cfg.check()`, run
first), an `out` folder holding checkpoints without `resume` (:class:`RunExistsError`), a resume
on different data (the sha256 of the loaded rows is saved in every checkpoint and compared), and a
loss or gradient norm that is not finite (:class:`NonFiniteError`: the run stops at that step
before the optimizer applies it, writes no checkpoint, and leaves the earlier ones untouched).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tabom.config import TrainConfig, to_dict, to_yaml, validate_objective
from tabom.training import checkpoint as ckpt
from tabom.training.build import (
    build_model,
    build_optimizer,
    build_scheduler,
    frozen_copy,
    resolve_precision,
    trainable_parameters,
)
from tabom.training.data import (
    Row,
    batches_per_epoch,
    collate,
    fingerprint_rows,
    load_rows,
    rank_batches,
    to_device,
)
from tabom.training import memory, parallel
from tabom.training.logger import MetricsLogger, truncate_metrics
from tabom.training.sampling import train_order
from tabom.training.saver import NonFiniteError, Position, Saver
from tabom.training.step import ReferenceFn, loss_step, reference_from_context

log = logging.getLogger(__name__)


class RunExistsError(FileExistsError, ValueError):
    """`out` already holds a run's checkpoints and `resume` was not asked for."""


def _check_fresh(run_dir: Path) -> None:
    done = ckpt.list_complete(run_dir)
    if done:
        raise RunExistsError(
            f"out={run_dir}: already holds a run's checkpoints ({', '.join(f.name for _, f in done)}); "
            "pass --resume to continue it, or give another out=DIR for a new run"
        )


def _stop_if_not_finite(step: int, metrics: dict[str, float], grad_norm: float, latest: str) -> None:
    """Raise :class:`NonFiniteError` when the step's loss or gradient norm is NaN or infinite."""
    bad = {k: v for k, v in metrics.items() if k.startswith("loss") and not math.isfinite(v)}
    if not math.isfinite(grad_norm):
        bad["grad_norm"] = grad_norm
    if bad:
        what = ", ".join(f"{k} {v}" for k, v in sorted(bad.items()))
        raise NonFiniteError(
            f"step {step}: {what}: training diverged; stopped before applying the step, final/ not "
            f"written ({latest}). Lower optim.lr, keep optim.max_grad_norm > 0, or check the data"
        )


def _reference(base: Any, cfg: TrainConfig, device: torch.device, mode: str = "ddp",
               bf16: bool = False) -> ReferenceFn:
    """T3D's frozen reference: the same network with LoRA disabled, or a frozen full copy
    (sharded like the model under FSDP)."""
    if cfg.lora.enabled:
        from tabom.models.adapters import disable_adapter

        return reference_from_context(base, lambda: disable_adapter(base))
    ref = frozen_copy(base)
    ref = parallel.shard(ref, device, bf16) if mode == "fsdp" else ref.to(device)

    def forward(ids: torch.Tensor, attn: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return ref(ids, attn, positions=positions)

    return forward


def _mean_metrics(acc: Any, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
    """Average summed per-micro-batch metrics over micro-batches, then over ranks."""
    if not sums:
        return {}
    keys = sorted(sums)
    stacked = torch.stack([sums[k].detach().float().reshape(()) for k in keys]) / max(count, 1)
    stacked = acc.reduce(stacked.to(acc.device), reduction="mean")
    return {k: float(v) for k, v in zip(keys, stacked.tolist())}


def global_batch_note(world: int, cfg: TrainConfig) -> tuple[str, str | None]:
    """The effective global batch line, and a warning when it differs from `cfg.paper_global_batch`."""
    total = world * cfg.batch_size * cfg.grad_accum
    line = (f"effective global batch: {world} process(es) x {cfg.batch_size} rows x "
            f"{cfg.grad_accum} accumulation = {total}")
    paper = cfg.paper_global_batch
    if paper is None or paper == total:
        return line, None
    hint = ""
    if paper % (world * cfg.batch_size) == 0:
        hint = f"; grad_accum={paper // (world * cfg.batch_size)} gives {paper}"
    return line, f"warning: the recipe declares the paper's global batch {paper}, this run's is {total}{hint}"


def note_global_batch(logger: MetricsLogger, world: int, cfg: TrainConfig) -> None:
    """Print the effective global batch (and the warning of `global_batch_note`) once, on rank 0."""
    line, warning = global_batch_note(world, cfg)
    logger.note(line)
    if warning is not None:
        logger.note(warning)
        if logger.enabled:
            log.warning(warning)


def train(cfg: TrainConfig, resume: bool = False, console: bool = True) -> Path:
    """Run (or resume) the training described by ``cfg``; returns the run folder ``cfg.out``.

    ``cfg`` is checked again first (fields assigned after construction included). ``cfg.threads``
    (when not 0) holds only while training: the caller's torch thread count is restored
    afterwards, so a pipeline that evaluates next is not left on the recipe's count.
    """
    cfg.check()
    previous = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, resume, console)
    finally:
        torch.set_num_threads(previous)


def _train(cfg: TrainConfig, resume: bool, console: bool) -> Path:
    """setup -> restore -> the loop -> final/, with the logger open throughout."""
    run = setup(cfg, resume)
    if run is None:  # already finished
        return Path(cfg.out)
    pos = restore(run)
    logger = open_logger(run, pos, console)
    with contextlib.closing(logger):  # closed on an error too
        pos = run_epochs(run, pos, logger)
        run.saver.save("final", pos, [], pos.epoch)
        logger.note(f"saved {run.run_dir / 'final'}")
    return run.run_dir


@dataclass
class Run:
    """Everything a training run is made of, as :func:`setup` built it."""

    cfg: TrainConfig
    acc: Any
    run_dir: Path
    latest: Path | None
    mode: str
    objective: Any
    obj_cfg: Any
    base: Any
    model: Any
    reference: ReferenceFn | None
    rows: list[Row]
    lengths: list[int]
    n_batches: int
    total_steps: int
    n_epochs: int
    optimizer: Any
    scheduler: Any
    generator: torch.Generator
    saver: Saver

    @property
    def rank(self) -> int:
        """This process's index."""
        return int(self.acc.process_index)

    @property
    def world(self) -> int:
        """The number of processes."""
        return int(self.acc.num_processes)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        """The trainable parameters (sharded ones under FSDP)."""
        return trainable_parameters(self.base)


def _accelerator(cfg: TrainConfig) -> Any:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()  # a second train() in this process may ask for another precision
    return Accelerator(mixed_precision=resolve_precision(cfg.precision), cpu=not torch.cuda.is_available())


def open_run_dir(acc: Any, cfg: TrainConfig, resume: bool) -> tuple[Path, Path | None]:
    """(run folder, checkpoint to resume from): a file as `out`, or checkpoints without `resume`,
    are refused; what a killed prune left is cleared first."""
    run_dir = Path(cfg.out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"out={run_dir}: is a file, expected a run folder")
    if acc.is_main_process:
        ckpt.remove_trash(run_dir)  # what a prune killed midway left
    acc.wait_for_everyone()
    latest = ckpt.find_latest(run_dir) if resume else None
    if not resume:
        _check_fresh(run_dir)
    return run_dir, latest


def _schedule(cfg: TrainConfig, n_rows: int, world: int) -> tuple[int, int, int]:
    """(micro-batches per epoch per rank, optimizer steps in all, epochs to run)."""
    n_batches = batches_per_epoch(n_rows, cfg.batch_size, world)
    updates_per_epoch = -(-n_batches // cfg.grad_accum)
    total_steps = cfg.max_steps or cfg.epochs * updates_per_epoch
    return n_batches, total_steps, -(-total_steps // updates_per_epoch)


def setup(cfg: TrainConfig, resume: bool) -> Run | None:
    """Model, data, optimizer, schedule, generators and saver of a run; None when `resume` finds
    it finished. Weights of the checkpoint resumed from are loaded here, before sharding."""
    from tabom.objectives import get_objective

    acc = _accelerator(cfg)
    rank, world = acc.process_index, acc.num_processes
    run_dir, latest = open_run_dir(acc, cfg, resume)
    if latest is not None and latest.name == "final":
        if acc.is_main_process:
            log.warning("%s: already finished (final/ exists); nothing to resume", run_dir)
        return None
    objective = get_objective(cfg.objective.name)
    obj_cfg = validate_objective(cfg.objective, data=cfg.data)
    base = build_model(cfg)
    rows = load_rows(cfg.data, base)
    n_batches, total_steps, n_epochs = _schedule(cfg, len(rows), world)
    mode = parallel.effective_mode(cfg.parallel, world)
    bf16 = resolve_precision(cfg.precision) == "bf16"
    generator = torch.Generator().manual_seed(cfg.seed * 1009 + rank)
    torch.manual_seed(cfg.seed + rank)  # dropout
    reference = (_reference(base, cfg, acc.device, mode, bf16)  # before resumed weights
                 if objective.needs_reference else None)
    parallel.keep_fp32_master(base, full_finetune=not cfg.lora.enabled, sharded=mode == "fsdp")
    if latest is not None:
        parallel.check_resume(ckpt.read_state_json(latest), latest, world, mode)  # before any state
        ckpt.load_weights(base, latest, cfg.lora.enabled)
    model, optimizer = parallel.prepare(acc, base, mode, bf16, lambda m: build_optimizer(m, cfg.optim))
    scheduler = build_scheduler(getattr(optimizer, "optimizer", optimizer), cfg.optim, total_steps)
    saver = Saver(acc, run_dir, base, cfg, optimizer, scheduler, generator, mode)
    saver.data_sha256 = fingerprint_rows(rows)
    lengths = [len(r.prompt) + len(r.response) for r in rows]
    return Run(cfg, acc, run_dir, latest, mode, objective, obj_cfg, base, model, reference, rows, lengths,
               n_batches, total_steps, n_epochs, optimizer, scheduler, generator, saver)


def restore(run: Run) -> Position:
    """The position to start from: the resumed checkpoint's optimizer, schedule, RNGs and place
    in the data (after checking it was saved on the same data), or the start."""
    latest, cfg = run.latest, run.cfg
    if latest is None:
        return Position()
    meta = ckpt.load_trainer_state(latest, None if run.mode == "fsdp" else run.optimizer, run.scheduler)
    if run.mode == "fsdp":
        parallel.load_optimizer_shard(latest, run.rank, run.world, run.optimizer)
    pos = Position(int(meta["global_step"]), int(meta["epoch"]), int(meta["batch_in_epoch"]))
    saved_sha, data_sha256 = meta.get("data_sha256"), run.saver.data_sha256
    if saved_sha and saved_sha != data_sha256:
        raise ValueError(
            f"{latest}: saved with different training data (rows sha256 {saved_sha[:12]}..., "
            f"now {data_sha256[:12]}... from {cfg.data.path or cfg.data.task}); resume with the "
            "data the run started on, or start a new run with another out=DIR"
        )
    saved_order = meta.get("data_order") or []
    saved_epoch = int(meta["data_order_epoch"])
    if saved_order and saved_order != _order(run, saved_epoch):
        raise ValueError(f"{latest}: the data order differs from this run's (data or seed changed)")
    ckpt.load_rng(latest, run.rank, run.generator)
    run.saver.last_saved = f"the last checkpoint is {latest}"
    return pos


def _order(run: Run, epoch: int) -> list[int]:
    cfg = run.cfg
    return train_order(run.lengths, cfg.seed, epoch, cfg.batch_size * run.world, cfg.data.group_by_length)


def open_logger(run: Run, pos: Position, console: bool) -> MetricsLogger:
    """The metrics logger (main process), after writing recipe.yaml and dropping metrics lines a
    killed run wrote after its last checkpoint; prints the run's summary lines."""
    cfg, acc, run_dir = run.cfg, run.acc, run.run_dir
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(to_yaml(cfg))
        truncate_metrics(run_dir, pos.step)
    logger = MetricsLogger(run_dir, cfg.report_to, enabled=acc.is_main_process, console=console,
                           config=to_dict(cfg), wandb_project=cfg.wandb_project,
                           wandb_entity=cfg.wandb_entity, run_name=cfg.run_name)
    n_train = sum(p.numel() for p in run.params)
    logger.note(
        f"{len(run.rows)} rows, {run.world} process(es), {run.n_batches} micro-batches/epoch, "
        f"{run.total_steps} steps, {n_train:,} trainable parameters"
        + (f"; resumed from {run.latest}" if run.latest else "")
    )
    note_global_batch(logger, run.world, cfg)
    if parallel.mode_note(cfg.parallel, run.world):
        logger.note(parallel.mode_note(cfg.parallel, run.world) or "")
    logger.note(memory.run_note(run.base, lora=cfg.lora.enabled, mode=run.mode, world=run.world,
                                checkpointing=cfg.gradient_checkpointing, rows=cfg.batch_size,
                                seq_len=max(run.lengths), supervised=cfg.data.gen_length))
    return logger


def optimizer_step(run: Run, group: list[list[int]], step: int) -> tuple[dict[str, float], int, float]:
    """One optimizer step over the micro-batches `group` (row indices): (metrics averaged over
    micro-batches and ranks, attended tokens on this rank, gradient norm before clipping).
    Raises :class:`NonFiniteError` before applying a step whose loss or norm is not finite."""
    acc, cfg, base = run.acc, run.cfg, run.base
    sums: dict[str, torch.Tensor] = {}
    tokens = 0
    for i, idx in enumerate(group):
        host = collate([run.rows[j] for j in idx], base.pad_token_id, base.mask_token_id)
        tokens += int(host.attention_mask.sum())  # counted on the host: no device sync
        batch = to_device(host, acc.device)
        with parallel.no_sync(acc, run.model, skip=i < len(group) - 1):
            out = loss_step(run.model, batch, run.objective, run.obj_cfg, run.generator, run.reference)
            acc.backward(out.loss / len(group))
        for key, value in {"loss": out.loss.detach(), **out.metrics}.items():
            sums[key] = sums.get(key, 0) + value.detach().float()
    max_norm = cfg.optim.max_grad_norm if cfg.optim.max_grad_norm > 0 else float("inf")
    grad_norm = float(parallel.clip_grad_norm(acc, run.params, max_norm))
    metrics = _mean_metrics(acc, sums, len(group))  # the same on every rank (reduced)
    _stop_if_not_finite(step, metrics, grad_norm, run.saver.last_saved)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return metrics, tokens, grad_norm


def run_epochs(run: Run, pos: Position, logger: MetricsLogger) -> Position:
    """The loop from `pos` to the last step: optimizer steps, logging, step and epoch checkpoints."""
    cfg, total = run.cfg, run.total_steps
    run.model.train()
    for epoch in range(pos.epoch, run.n_epochs):
        order = _order(run, epoch)
        batches = rank_batches(order, cfg.batch_size, run.rank, run.world)
        micro = pos.batch_in_epoch if epoch == pos.epoch else 0
        while micro < len(batches) and pos.step < total:
            t0 = time.perf_counter()
            group = batches[micro: micro + cfg.grad_accum]
            lr = run.scheduler.get_last_lr()[0]
            metrics, tokens, grad_norm = optimizer_step(run, group, pos.step + 1)
            pos = Position(pos.step + 1, epoch, micro + len(group))
            micro = pos.batch_in_epoch
            if pos.step % cfg.log_every == 0 or pos.step == total:
                elapsed = max(time.perf_counter() - t0, 1e-9)
                metrics.update(lr=lr, grad_norm=grad_norm, tokens_per_s=tokens * run.world / elapsed)
                logger.log(pos.step, metrics, epoch=epoch + 1)
            if cfg.save_every and pos.step % cfg.save_every == 0 and pos.step < total:
                run.saver.save(f"step_{pos.step}", pos, order, epoch)
        if micro >= len(batches):
            pos = Position(pos.step, epoch + 1, 0)
            run.saver.save(f"epoch_{epoch + 1}", pos, order, epoch)
        if pos.step >= total:
            break
    return pos
