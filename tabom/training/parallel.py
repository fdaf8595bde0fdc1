"""How the trained weights are spread over processes: `parallel: ddp` (default) or `parallel: fsdp`.

    model, optimizer = prepare(acc, base, cfg)             # DDP through accelerate, or FSDP2
    with no_sync(acc, model, skip=not last_micro_batch):   # gradient accumulation
        ...backward...
    norm = clip_grad_norm(acc, params, max_norm)           # a plain float tensor on every rank
    state = full_state_dict(model)                         # whole weights on rank 0 (collective)
    save_optimizer_shard(folder, rank, world, optimizer)   # each rank's slice of AdamW's state

- **ddp**: every process holds all weights, gradients and optimizer state; accelerate wraps the
  model in DistributedDataParallel and autocasts to bf16 when `precision` asks for it.
- **fsdp** (with 2 or more processes): PyTorch FSDP2 (`torch.distributed.fsdp.fully_shard`) shards
  every decoder layer, then the rest of the model (embeddings, final norm, LM head), over all
  processes: parameters, gradients and AdamW's state are each held 1/N per process. Parameters are
  kept in float32 (the optimizer's master weights); with bf16 precision each layer is gathered in
  bf16 for compute and gradients are reduced in float32 (`MixedPrecisionPolicy`). Logits come back
  in float32. LoRA and full fine-tuning both work (frozen weights are sharded too).
  On one process `parallel: fsdp` has nothing to shard: the run is the ordinary unsharded one
  (the same as `ddp`) and says so.

Checkpoints stay whole: the weights are gathered to rank 0 and written exactly as one process
writes them (`final/` loads with `tabom.models.load`). AdamW's state is not gathered: each rank
writes `optimizer_rank{R}.pt` with its own shards (plain tensors, read back with
`torch.load(weights_only=True)`), and `--resume` with the same number of processes restores them
exactly. A resume with another number of processes, or another `parallel`, is refused before any
state is loaded (:func:`check_resume`). A model without a list of decoder layers cannot be sharded
per layer: :func:`decoder_layers` raises `ValueError` on every rank before any collective runs.

Full fine-tuning keeps float32 weights whatever the loading dtype (:func:`keep_fp32_master`): a
bf16 weight cannot hold an update smaller than half its spacing (1.0 + 1e-4 rounds to 1.0), so
bf16 weights with a bf16 AdamW lose small updates; compute still runs in bf16 under `precision`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn

PARALLEL_MODES: tuple[str, ...] = ("ddp", "fsdp")


def effective_mode(parallel: str, world: int) -> str:
    """The mode a run really uses: `fsdp` only with 2 or more processes, else `ddp` (unsharded)."""
    if parallel not in PARALLEL_MODES:
        raise ValueError(f"parallel: unknown mode {parallel!r} ({', '.join(PARALLEL_MODES)})")
    return "fsdp" if parallel == "fsdp" and world > 1 else "ddp"


def mode_note(parallel: str, world: int) -> str | None:
    """The line the trainer prints when `parallel: fsdp` runs on one process (else None)."""
    if parallel == "fsdp" and world == 1:
        return "parallel=fsdp on 1 process: nothing to shard, training unsharded (as parallel=ddp)"
    return None


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder layers (what FSDP shards one by one).

    The list is the `nn.ModuleList` holding `config.num_hidden_layers` modules of one class (the
    first such list when the config does not say). ValueError when there is none.
    """
    config = getattr(model, "config", None)
    want = getattr(config, "num_hidden_layers", None)
    for module in model.modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        if want is None or len(module) == want:
            return module
    raise ValueError(
        f"parallel=fsdp: {type(model).__name__} has no list of decoder layers to shard one by one "
        "(an nn.ModuleList of config.num_hidden_layers blocks); use parallel=ddp"
    )


def keep_fp32_master(model: nn.Module, full_finetune: bool, sharded: bool) -> int:
    """Cast the weights the optimizer updates to float32 in place; returns how many were cast.

    Full fine-tuning: every trainable parameter. Under FSDP: every parameter (one dtype per
    sharded group; frozen weights are 1/N per process, and gathered in bf16 for compute when the
    precision is bf16). LoRA without FSDP: nothing (PEFT keeps adapters in float32 already).
    """
    cast = 0
    for param in model.parameters():
        if param.dtype == torch.float32 or not param.is_floating_point():
            continue
        if sharded or (full_finetune and param.requires_grad):
            param.data = param.data.float()
            cast += 1
    return cast


def shard(model: nn.Module, device: torch.device, bf16: bool) -> nn.Module:
    """FSDP2 in place: each decoder layer, then the whole model; returns the model.

    `bf16`: gather parameters in bf16 for compute, reduce gradients in float32, return float32
    outputs. Needs an initialised process group (accelerate's).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    layers = decoder_layers(model)  # ValueError before any collective
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    # no model.to(device): fully_shard moves each group's parameters and buffers to the mesh's
    # device as it shards them, so a GPU never holds the whole unsharded model
    inner = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
    outer = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32,
                                  output_dtype=torch.float32) if bf16 else None)
    for layer in layers:
        fully_shard(layer, mesh=mesh, **({"mp_policy": inner} if inner else {}))
    fully_shard(model, mesh=mesh, **({"mp_policy": outer} if outer else {}))
    return model


def prepare(acc: Any, base: nn.Module, mode: str, bf16: bool,
            make_optimizer: Any) -> tuple[nn.Module, torch.optim.Optimizer]:
    """(model to call, optimizer): DDP through `acc.prepare`, or FSDP2 via :func:`shard`.

    `make_optimizer(module)` builds the optimizer; under FSDP it is called after sharding so it
    holds the sharded parameters.
    """
    if mode == "fsdp":
        model = shard(base, acc.device, bf16)
        return model, make_optimizer(model)
    return acc.prepare(base, make_optimizer(base))


def is_sharded(model: nn.Module) -> bool:
    """True when FSDP2 wrapped the model."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@contextlib.contextmanager
def no_sync(acc: Any, model: nn.Module, skip: bool) -> Iterator[None]:
    """Inside: no gradient reduction when `skip` (not the last micro-batch of a step)."""
    if not skip:
        yield
    elif is_sharded(model):
        model.set_requires_gradient_sync(False)  # type: ignore[operator]
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)  # type: ignore[operator]
    else:
        with acc.no_sync(model):
            yield


def clip_grad_norm(acc: Any, params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Clip the gradients' global norm to `max_norm`; returns the norm before clipping (a plain
    tensor, the same on every rank, sharded gradients included)."""
    if params and _is_dtensor(params[0]):
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        return norm.full_tensor() if _is_dtensor(norm) else norm
    return acc.clip_grad_norm_(params, max_norm)


def _is_dtensor(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if _is_dtensor(t) else t


def weights_finite(params: list[nn.Parameter]) -> bool:
    """True when every weight is finite; under FSDP each rank checks its shards and all agree."""
    ok = all(bool(torch.isfinite(_local(p.detach())).all()) for p in params)
    if params and _is_dtensor(params[0]):
        flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=_local(params[0]).device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        ok = bool(flag.item())
    return ok


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """Whole weights of a sharded model on rank 0 (on CPU), keyed like the unwrapped model's
    `state_dict()`; None on other ranks. Every rank must call it (it gathers)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return state if dist.get_rank() == 0 else None


def backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The `backbone.` entries of a DiffusionLM state dict, prefix removed (transformers naming)."""
    prefix = "backbone."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


# --------------------------------------------------------------------------- optimizer shards
def _shard_path(folder: Path, rank: int) -> Path:
    return folder / f"optimizer_rank{rank}.pt"


def _flat_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def save_optimizer_shard(folder: Path, rank: int, world: int, optimizer: torch.optim.Optimizer) -> Path:
    """This rank's AdamW state (its shards, as plain tensors) to `folder/optimizer_rank{rank}.pt`."""
    blob = optimizer.state_dict()
    state = {idx: {k: _local(v).detach().clone().cpu() if isinstance(v, torch.Tensor) else v
                   for k, v in entry.items()}
             for idx, entry in blob["state"].items()}
    shapes = [list(p.shape) for p in _flat_params(optimizer)]
    path = _shard_path(folder, rank)
    torch.save({"world_size": world, "rank": rank, "shapes": shapes, "state": state,
                "param_groups": blob["param_groups"]}, path)
    return path


def load_optimizer_shard(folder: Path, rank: int, world: int, optimizer: torch.optim.Optimizer) -> None:
    """Restore what :func:`save_optimizer_shard` wrote; ValueError when it does not fit this run."""
    from torch.distributed.tensor import DTensor

    path = _shard_path(folder, rank)
    if not path.exists():
        raise ValueError(f"{path}: missing; the checkpoint was not written by a parallel=fsdp run "
                         f"of {world} processes")
    blob = torch.load(path, weights_only=True, map_location="cpu")
    params = _flat_params(optimizer)
    if int(blob["world_size"]) != world or blob["shapes"] != [list(p.shape) for p in params]:
        raise ValueError(f"{path}: written by {blob['world_size']} processes for other parameter shapes; "
                         f"this run has {world} processes")
    state: dict[int, dict[str, Any]] = {}
    for idx, entry in blob["state"].items():
        param = params[int(idx)]
        restored = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and _is_dtensor(param) and value.dim() > 0:
                local = value.to(_local(param).device)
                value = DTensor.from_local(local, param.device_mesh, param.placements, run_check=False,
                                           shape=param.shape, stride=param.stride())
            restored[key] = value
        state[int(idx)] = restored
    optimizer.load_state_dict({"state": state, "param_groups": blob["param_groups"]})


def check_resume(meta: dict[str, Any], where: Path, world: int, mode: str) -> None:
    """Refuse a resume whose process count or parallel mode differs from the checkpoint's."""
    saved_world = int(meta.get("world_size", world))
    saved_mode = str(meta.get("parallel", "ddp"))
    if saved_world != world:
        raise ValueError(f"{where}: saved with {saved_world} processes, resumed with {world}; "
                         f"resume with {saved_world} processes (the data order and "
                         + ("the optimizer shards" if saved_mode == "fsdp" else "the RNG states")
                         + " are per process)")
    if saved_mode != mode:
        raise ValueError(f"{where}: saved with parallel={saved_mode}, resumed with parallel={mode}; "
                         f"resume with parallel={saved_mode}")
