"""Atomic checkpoints of a training run, and finding the newest complete one to resume from.

A checkpoint folder `RUN/NAME/` (`epoch_3`, `step_200`, `final`) holds:

- the weights: `adapter_config.json` + `adapter_model.safetensors` (LoRA, PEFT naming) or a
  full tabom model folder (`config.json`, `model.safetensors`, `diffusion.json`),
- the tokenizer, the resolved recipe `recipe.yaml`,
- `trainer_state.pt` (optimizer and scheduler state, written with `torch.save`, read with
  `torch.load(weights_only=True)`), `trainer_state.json` (step, epoch, batch in epoch, data order),
- `rng_rank{R}.pt`: each rank's RNG states (torch, CUDA, Python, the objective's generator),
- `COMPLETE`, written last.

Writing goes into `RUN/NAME.tmp/`; every file is fsynced, `COMPLETE` is written, then the folder
is renamed to `RUN/NAME/` (an older `RUN/NAME/` is moved aside first and deleted after). A run
killed at any moment therefore leaves either no `RUN/NAME/` or a complete one; a `.tmp` folder or
a folder without `COMPLETE` is never resumed from. Deleting is the reverse: a pruned checkpoint is
first renamed to `RUN/NAME.trash` (one atomic step, so it stops being a checkpoint at once), then
removed; a kill mid-delete leaves a `.trash` folder, which is ignored and cleared by the next run
(:func:`remove_trash`). A folder whose `trainer_state.json` is missing or unreadable is skipped
with a warning, so one damaged folder never blocks `--resume` from the others.

    tmp = begin(run, "epoch_1")          # main process; other ranks wait at a barrier
    ...every rank writes its files into tmp...
    commit(run, "epoch_1")               # main process: fsync, COMPLETE, rename
    latest = find_latest(run)            # Path | None
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import torch

COMPLETE = "COMPLETE"
STATE_JSON = "trainer_state.json"
STATE_PT = "trainer_state.pt"
TMP_SUFFIX = ".tmp"
TRASH_SUFFIX = ".trash"
NAME_PATTERN = re.compile(r"^(final|epoch_[0-9]+|step_[0-9]+)$")
"""Names of checkpoint folders; anything else in a run folder (`.tmp`, `.old`, `.trash`) is not one."""

log = logging.getLogger(__name__)


def _fsync_path(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def begin(run_dir: Path, name: str) -> Path:
    """Create an empty `run_dir/name.tmp/` (a stale one from a killed run is removed first)."""
    tmp = run_dir / f"{name}{TMP_SUFFIX}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit(run_dir: Path, name: str) -> Path:
    """fsync every file of `name.tmp/`, write `COMPLETE`, rename to `name/`; returns the folder."""
    tmp = run_dir / f"{name}{TMP_SUFFIX}"
    for path in sorted(tmp.rglob("*")):
        if path.is_file():
            _fsync_path(path)
    marker = tmp / COMPLETE
    with open(marker, "w") as f:
        f.write("ok\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync_path(tmp)
    final = run_dir / name
    old = run_dir / f"{name}.old"
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_path(run_dir)
    if old.exists():
        shutil.rmtree(old)
    return final


def is_complete(folder: Path) -> bool:
    """A finished checkpoint: named `final`/`epoch_N`/`step_N`, with `COMPLETE` and its state JSON."""
    return (folder.is_dir() and NAME_PATTERN.match(folder.name) is not None
            and (folder / COMPLETE).exists() and (folder / STATE_JSON).exists())


def read_state_json(folder: Path) -> dict[str, Any]:
    """The JSON trainer state of a checkpoint; ValueError naming the file when it is bad."""
    path = folder / STATE_JSON
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable trainer state ({exc})") from None


def list_complete(run_dir: Path) -> list[tuple[int, Path]]:
    """(global step, folder) of every complete checkpoint in the run, oldest first.

    At equal steps `final` sorts last, then epoch checkpoints, then step checkpoints.
    """
    if not run_dir.is_dir():
        return []
    rank = {"final": 2, "epoch": 1}
    found = []
    for folder in run_dir.iterdir():
        if is_complete(folder):
            try:
                step = int(read_state_json(folder)["global_step"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s: skipped, not a usable checkpoint (%s)", folder, exc)
                continue
            kind = rank.get(folder.name.split("_")[0], 0)
            found.append((step, kind, folder))
    found.sort(key=lambda t: (t[0], t[1], t[2].name))
    return [(step, folder) for step, _, folder in found]


def find_latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of the run (largest global step), or None."""
    done = list_complete(run_dir)
    return done[-1][1] if done else None


def discard(folder: Path) -> None:
    """Delete a checkpoint folder crash-safely: rename it to `NAME.trash` (atomic), then remove it."""
    trash = folder.with_name(folder.name + TRASH_SUFFIX)
    if trash.exists():
        shutil.rmtree(trash)
    os.replace(folder, trash)
    _fsync_path(folder.parent)
    shutil.rmtree(trash)


def remove_trash(run_dir: Path) -> list[Path]:
    """Remove `*.trash` folders a killed prune left in the run folder; returns them."""
    if not run_dir.is_dir():
        return []
    found = sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name.endswith(TRASH_SUFFIX))
    for path in found:
        shutil.rmtree(path)
    return found


def prune_step_checkpoints(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete `step_*` checkpoints; returns the deleted ones.

    Each is renamed away before any file in it is removed (:func:`discard`), so a kill during
    the prune never leaves a half-deleted folder that looks like a checkpoint.
    """
    steps = [f for _, f in list_complete(run_dir) if f.name.startswith("step_")]
    doomed = steps[:-keep] if keep > 0 else steps
    for folder in doomed:
        discard(folder)
    return doomed


# --------------------------------------------------------------------------- state files
def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG this process draws from: torch CPU (+ CUDA), Python, the objective's generator."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(_py_state_to_list(random.getstate())),
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state_to_list(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_rng(folder: Path, rank: int, generator: torch.Generator) -> None:
    """Save this rank's :func:`rng_state` to ``folder/rng_rank<rank>.pt``."""
    torch.save(rng_state(generator), folder / f"rng_rank{rank}.pt")


def load_rng(folder: Path, rank: int, generator: torch.Generator) -> None:
    """Restore this rank's RNG state from ``folder/rng_rank<rank>.pt``; FileNotFoundError when missing."""
    path = folder / f"rng_rank{rank}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (was the run saved with a different number of processes?)")
    set_rng_state(torch.load(path, weights_only=True), generator)


def save_trainer_state(folder: Path, optimizer: torch.optim.Optimizer | None, scheduler: Any,
                       meta: dict[str, Any]) -> None:
    """`trainer_state.pt` (optimizer + scheduler) and `trainer_state.json` (``meta``).

    `optimizer` None: a sharded run, whose ranks write their own optimizer shards
    (`tabom.training.parallel.save_optimizer_shard`).
    """
    optim_state = optimizer.state_dict() if optimizer is not None else None
    torch.save({"optimizer": optim_state, "scheduler": scheduler.state_dict()}, folder / STATE_PT)
    (folder / STATE_JSON).write_text(json.dumps(meta, indent=1) + "\n")


def load_trainer_state(folder: Path, optimizer: torch.optim.Optimizer | None, scheduler: Any) -> dict[str, Any]:
    """Restore optimizer (unless None: a sharded run) and scheduler from a checkpoint; returns its JSON meta."""
    blob = torch.load(folder / STATE_PT, weights_only=True, map_location="cpu")
    if optimizer is not None:
        optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    return read_state_json(folder)


# --------------------------------------------------------------------------- weights
def save_weights(model: Any, folder: Path, lora: bool, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """The adapter (LoRA) or the full model folder, plus the tokenizer, into ``folder``.

    `state_dict`: the backbone's whole weights (transformers naming) to write instead of the
    model's own, e.g. gathered from FSDP shards; the files are the same either way.
    """
    if lora:
        from tabom.models.adapters import save_adapter

        save_adapter(model, folder, state_dict=state_dict)
        model.tokenizer.save_pretrained(str(folder))
    else:
        from tabom.models.loading import save

        save(model, folder, state_dict=state_dict)


def load_weights(model: Any, folder: Path, lora: bool) -> None:
    """Load the trainable weights of a checkpoint into ``model`` in place (for resume)."""
    from safetensors.torch import load_file

    if lora:
        from peft import set_peft_model_state_dict

        from tabom.models.adapters import WEIGHTS_FILE, read_adapter_state

        state = read_adapter_state(folder, model.family)  # LLaDA adapters are saved on LLaDA's names
        result = set_peft_model_state_dict(model.backbone, state)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise ValueError(f"{folder / WEIGHTS_FILE}: keys that fit no LoRA layer: {unexpected[:3]}")
        return
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no model*.safetensors to resume from")
    state: dict[str, torch.Tensor] = {}
    for path in files:
        state.update(load_file(str(path)))
    missing, unexpected = model.backbone.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(model.backbone.config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise ValueError(f"{folder}: weights do not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
