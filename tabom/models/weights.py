"""Lazy safetensors loading into a model built on the meta device (shared by the Dream and LLaDA loaders).

A released 7-8B checkpoint is a folder with either `model.safetensors` or shards listed in
`model.safetensors.index.json`. The loaders here never build the model twice: the backbone is
created with its parameters on the meta device (no memory), then every tensor is read from its
shard with `safe_open`, cast to the requested dtype, moved to its device and put in place of the
meta parameter. Peak memory is the model in its final dtype plus one tensor.

    files = weight_files(directory)                          # tensor name -> shard path
    with empty_model():
        backbone = LlamaForCausalLM(config)
    load_weights(backbone, directory, mapping, dtype=torch.bfloat16, device_map="auto")

`mapping` maps each tensor name *as stored in the checkpoint* to the parameter name in the
backbone; every mapped tensor must be present and every stored tensor must be mapped, or the
error names the file and the offending names. PyTorch pickles (`*.bin`) are refused.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
import torch
from torch import nn

from tabom.models.files import read_json

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
AUTO_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def config_error(path: Path, field: str, message: str) -> ValueError:
    """A ValueError naming `path:line: field: message`, the line being where `"field"` first appears."""
    lineno = 1
    try:
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            if f'"{field}"' in line:
                lineno = i
                break
    except OSError:
        pass
    return ValueError(f"{path}:{lineno}: {field}: {message}")


@contextlib.contextmanager
def open_shard(path: Path) -> Iterator[object]:
    """``safe_open(path)`` on the CPU; a corrupt or truncated file raises ValueError naming it.

    safetensors' own error (``SafetensorError: Error while deserializing header: header too
    large``) says what is wrong but not in which file; a sharded checkpoint has dozens.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            yield f
    except SafetensorError as exc:
        raise ValueError(f"{path}: corrupt or truncated safetensors file ({exc})") from None


def weight_files(directory: Path) -> dict[str, Path]:
    """Map every stored tensor name to the safetensors file that holds it.

    Reads `model.safetensors.index.json` when present (every shard it names must exist), else
    `model.safetensors`, else any `*.safetensors` in the folder. Refuses folders that only hold
    PyTorch pickles. Every file's header is read, so a corrupt or truncated one is named here.
    """
    index = directory / INDEX_FILE
    if index.exists():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise config_error(index, "weight_map", "missing or empty (expected {tensor name: shard file})")
        files = {name: directory / str(shard) for name, shard in weight_map.items()}
        for shard in sorted(set(files.values())):
            if not shard.exists():
                needed = [n for n, f in files.items() if f == shard]
                raise FileNotFoundError(
                    f"{index}: weight_map: shard {shard.name} is missing from {directory} "
                    f"({len(needed)} tensors need it, e.g. {needed[0]})"
                )
        return files
    shards = [directory / SINGLE_FILE] if (directory / SINGLE_FILE).exists() else sorted(directory.glob("*.safetensors"))
    if not shards:
        pickles = sorted(p.name for p in directory.glob("*.bin")) + sorted(p.name for p in directory.glob("*.pt"))
        if pickles:
            raise ValueError(
                f"{directory}: only PyTorch pickle weights found ({', '.join(pickles[:3])}); tabom loads "
                "safetensors only (pickles can run code when loaded). Convert once with "
                "safetensors.torch.save_file on a trusted machine, or download the .safetensors files."
            )
        raise FileNotFoundError(f"{directory}: no {SINGLE_FILE} or {INDEX_FILE} (no weights to load)")
    files: dict[str, Path] = {}
    for shard in shards:
        with open_shard(shard) as f:
            for name in f.keys():  # type: ignore[attr-defined]
                files[name] = shard
    return files


@contextlib.contextmanager
def empty_model() -> Iterator[None]:
    """Build modules with parameters on the meta device (buffers such as RoPE tables stay real)."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        yield


def resolve_device_map(
    model: nn.Module, device_map: str | dict | torch.device | None, dtype: torch.dtype
) -> dict[str, str]:
    """A {module prefix: device} map. None -> CPU; a device -> everything there; "auto" -> accelerate's plan."""
    if device_map is None:
        return {"": "cpu"}
    if isinstance(device_map, dict):
        plan = {str(k): str(v) for k, v in device_map.items()}
    elif str(device_map) in AUTO_MAPS:
        from accelerate import infer_auto_device_map
        from accelerate.utils import get_balanced_memory

        no_split = sorted(getattr(model, "_no_split_modules", None) or [])
        max_memory = None
        if str(device_map) != "sequential":
            max_memory = get_balanced_memory(
                model, dtype=dtype, no_split_module_classes=no_split,
                low_zero=str(device_map) == "balanced_low_0",
            )
        plan = {str(k): str(v) for k, v in infer_auto_device_map(
            model, max_memory=max_memory, no_split_module_classes=no_split, dtype=dtype
        ).items()}
    else:
        plan = {"": str(torch.device(device_map))}
    plan = {k: (f"cuda:{v}" if v.isdigit() else v) for k, v in plan.items()}
    if "disk" in plan.values():
        raise ValueError(f"device_map: disk offload is not supported (plan {plan}); use fewer layers or more memory")
    return plan


def device_for(name: str, plan: dict[str, str]) -> str:
    """The device of parameter `name` under `plan` (longest matching module prefix)."""
    best, device = -1, None
    for prefix, dev in plan.items():
        if prefix == "" or name == prefix or name.startswith(prefix + "."):
            if len(prefix) > best:
                best, device = len(prefix), dev
    if device is None:
        raise ValueError(f"device_map: no entry covers parameter {name} (map: {plan})")
    return device


def _set_parameter(model: nn.Module, name: str, value: torch.Tensor) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name) if module_name else model
    old = module._parameters[attr]
    module._parameters[attr] = nn.Parameter(value, requires_grad=old.requires_grad if old is not None else True)


def load_weights(
    model: nn.Module,
    directory: Path,
    mapping: dict[str, str],
    *,
    dtype: torch.dtype,
    device_map: str | dict | torch.device | None = None,
) -> dict[str, str]:
    """Fill the meta parameters of `model` from the checkpoint in `directory`, shard by shard.

    Args:
        model: built inside `empty_model()`; its parameter names are the values of `mapping`.
        directory: the checkpoint folder.
        mapping: stored tensor name -> parameter name in `model`.
        dtype: every tensor is cast to it as it is read.
        device_map: None (CPU), a device, "auto"/"balanced"/"sequential", or {prefix: device}.

    Returns:
        The device plan used ({prefix: device}); dispatch the model with it if it spans devices.
    """
    files = weight_files(directory)
    params = dict(model.named_parameters())
    for stored, target in mapping.items():
        if target not in params:
            raise ValueError(f"{directory}: internal mapping sends {stored} to unknown parameter {target}")
    unexpected = sorted(set(files) - set(mapping))
    if unexpected:
        shown = ", ".join(f"{n} (in {files[n].name})" for n in unexpected[:5])
        raise ValueError(
            f"{directory}: {len(unexpected)} unexpected parameter(s) for this architecture: {shown}"
            + (" ..." if len(unexpected) > 5 else "")
        )
    missing = sorted(set(mapping) - set(files))
    if missing:
        index = directory / INDEX_FILE
        source = index if index.exists() else directory / sorted({p.name for p in files.values()})[0]
        raise ValueError(
            f"{source}: {len(missing)} missing parameter(s): {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    plan = resolve_device_map(model, device_map, dtype)
    by_file: dict[Path, list[str]] = defaultdict(list)
    for name, shard in files.items():
        by_file[shard].append(name)
    for shard, names in sorted(by_file.items()):
        with open_shard(shard) as f:
            for stored in sorted(names):
                target = mapping[stored]
                tensor = f.get_tensor(stored)  # type: ignore[attr-defined]
                expected = tuple(params[target].shape)
                if tuple(tensor.shape) != expected:
                    raise ValueError(
                        f"{shard}: {stored}: shape {tuple(tensor.shape)} but the config implies {expected} "
                        f"(for {target})"
                    )
                _set_parameter(model, target, tensor.to(device=device_for(target, plan), dtype=dtype))
    return plan


def finish_placement(model: nn.Module, plan: dict[str, str]) -> nn.Module:
    """Move buffers to the single device of `plan`, or dispatch across devices with accelerate hooks."""
    devices = set(plan.values())
    if len(devices) == 1:
        return model.to(next(iter(devices)))
    from accelerate import dispatch_model

    return dispatch_model(model, device_map=plan)


def meta_parameters(model: nn.Module) -> list[str]:
    """Names of parameters still on the meta device (should be empty after loading)."""
    return [n for n, p in model.named_parameters() if p.device.type == "meta"]


def read_family_config(directory: Path, model_type: str) -> tuple[Path, dict]:
    """`directory/config.json` and its mapping, after checking `model_type` (case-insensitive)."""
    config_path = directory / "config.json"
    config = read_json(config_path)
    if str(config.get("model_type", "")).lower() != model_type.lower():
        raise config_error(config_path, "model_type", f"expected {model_type!r}, got {config.get('model_type')!r}")
    return config_path, config


def build_and_load(model_cls: type, hf_config: object, directory: Path, mapping: dict[str, str] | None, *,
                   dtype: torch.dtype, device_map: object) -> nn.Module:
    """Build `model_cls(hf_config)` without allocating, stream its weights from `directory`, tie
    the LM head to the embeddings when the config says so, and place it (see :func:`load_weights`).

    `mapping` is stored tensor name -> parameter name; None: the checkpoint uses the model's own
    names (every parameter but a tied `lm_head.weight`).
    """
    hf_config.dtype = dtype  # type: ignore[attr-defined]
    with empty_model():
        model = model_cls(hf_config)
    tied = bool(getattr(hf_config, "tie_word_embeddings", False))
    if mapping is None:
        mapping = {n: n for n, _ in model.named_parameters() if not (tied and n == "lm_head.weight")}
    plan = load_weights(model, directory, mapping, dtype=dtype, device_map=device_map)
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    return finish_placement(model, plan)
