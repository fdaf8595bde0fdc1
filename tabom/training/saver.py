"""Writing a run's checkpoints from every process: `Saver.save(name, position, order, epoch)`.

    saver = Saver(acc, run_dir, base, cfg, optimizer, scheduler, generator, mode)
    saver.data_sha256 = fingerprint_rows(rows)      # saved in each checkpoint, compared on resume
    saver.save("epoch_1", pos, order, epoch)        # -> run_dir/epoch_1 (atomic: tabom.training.checkpoint)

The main process writes the weights (gathered from the shards first under `parallel: fsdp`,
`tabom.training.parallel`), the recipe and the trainer state; every rank writes its RNG states and,
under FSDP, its optimizer shard; barriers keep the ranks together. The weights are checked finite
first (:class:`NonFiniteError`, nothing written). `Position` is where a run is: optimizer steps
done, epoch under way, micro-batches done in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tabom.config import TrainConfig, to_yaml
from tabom.training import checkpoint as ckpt
from tabom.training import parallel
from tabom.training.build import trainable_parameters


@dataclass
class Position:
    """Where the run is: optimizer steps done, epoch under way, micro-batches done in it."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


class NonFiniteError(ValueError):
    """The loss, the gradient norm or the weights stopped being finite: the run diverged."""


def check_weights_finite(params: list[torch.nn.Parameter], where: str) -> None:
    """Raise :class:`NonFiniteError` when a weight is NaN or infinite (nothing is saved then)."""
    if not parallel.weights_finite(params):  # under FSDP: every rank's shards, agreed by all ranks
        raise NonFiniteError(f"{where}: the trained weights hold NaN or inf (training diverged): not saved")


class Saver:
    """Writes atomic checkpoints from every rank (main writes weights and state)."""

    def __init__(self, accelerator: Any, run_dir: Path, base: Any, cfg: TrainConfig,
                 optimizer: Any, scheduler: Any, generator: torch.Generator, mode: str = "ddp") -> None:
        self.acc, self.run_dir, self.base, self.cfg = accelerator, run_dir, base, cfg
        self.optimizer, self.scheduler, self.generator = optimizer, scheduler, generator
        self.mode = mode
        self.data_sha256 = ""
        self.last_saved = "no checkpoint was written"

    def save(self, name: str, pos: Position, order: list[int], order_epoch: int) -> Path:
        """Write checkpoint `name` at `pos` (`order`: the data order of epoch `order_epoch`, for
        resume); every rank calls it. Returns `run_dir/name`."""
        acc = self.acc
        check_weights_finite(trainable_parameters(self.base), f"step {pos.step}, checkpoint {name}")
        acc.wait_for_everyone()
        sharded = self.mode == "fsdp"
        whole = parallel.full_state_dict(self.base) if sharded else None  # gathered to rank 0
        tmp = self.run_dir / f"{name}{ckpt.TMP_SUFFIX}"
        if acc.is_main_process:
            ckpt.begin(self.run_dir, name)
            ckpt.save_weights(self.base, tmp, self.cfg.lora.enabled,
                              state_dict=parallel.backbone_state(whole) if whole is not None else None)
            (tmp / "recipe.yaml").write_text(to_yaml(self.cfg))
            meta = {"global_step": pos.step, "epoch": pos.epoch, "batch_in_epoch": pos.batch_in_epoch,
                    "world_size": acc.num_processes, "parallel": self.mode, "data_order": order,
                    "data_order_epoch": order_epoch, "data_sha256": self.data_sha256}
            ckpt.save_trainer_state(tmp, None if sharded else self.optimizer, self.scheduler, meta)
        del whole
        acc.wait_for_everyone()
        ckpt.save_rng(tmp, acc.process_index, self.generator)
        if sharded:
            parallel.save_optimizer_shard(tmp, acc.process_index, acc.num_processes, self.optimizer)
        acc.wait_for_everyone()
        if acc.is_main_process:
            ckpt.commit(self.run_dir, name)
            if name.startswith("step_"):
                ckpt.prune_step_checkpoints(self.run_dir, self.cfg.keep_step_checkpoints)
        acc.wait_for_everyone()
        self.last_saved = f"the last checkpoint is {self.run_dir / name}"
        return self.run_dir / name
