"""Load and save `DiffusionLM`s: the built-in tiny model, tabom-saved folders, Dream and LLaDA.

    load("tiny")                 # the checkpoint shipped in tabom/assets/tiny
    load("/ckpt/Dream-v0-Instruct-7B", dtype="bfloat16", device="cuda")
    save(model, "out/dir")       # config.json + model.safetensors + tokenizer + diffusion.json

A folder tabom wrote carries `diffusion.json` (mask/eos/pad ids, logit shift, family) beside a
transformers Llama/Qwen2 config. Folders in the original Dream (`model_type: "Dream"`) and LLaDA
(`model_type: "llada"`) layouts are recognised from config.json and go through their own loaders.
Weights load from safetensors only; `trust_remote_code` is never used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from tabom.models.diffusion_lm import DiffusionLM
from tabom.models.files import load_tokenizer, read_json

META_FILE = "diffusion.json"
TINY_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny"


def model_dir(name_or_path: str | Path) -> Path:
    """The folder a model name stands for: "tiny" is the shipped checkpoint, anything else a path."""
    return TINY_DIR if str(name_or_path) == "tiny" else Path(name_or_path).expanduser()


def existing_model_dir(name_or_path: str | Path) -> Path:
    """`model_dir(name_or_path)`, or FileNotFoundError saying it is not a model folder."""
    directory = model_dir(name_or_path)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{name_or_path}: not a model folder (give 'tiny' or a local checkpoint directory; "
            "tabom never downloads weights)"
        )
    return directory


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device | None) -> torch.dtype:
    """'auto'/None -> bfloat16 on a CUDA device, float32 elsewhere; strings name torch dtypes."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        on_cuda = device is not None and str(device).startswith("cuda")
        return torch.bfloat16 if on_cuda else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
                "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}[str(dtype)]
    except KeyError:
        raise ValueError(f"dtype: unknown {dtype!r} (use bfloat16, float16 or float32)") from None


def default_device() -> str:
    """``"cuda"`` when CUDA is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, after checking that this machine has it.

    Raises `tabom.errors.UsageError` (a ValueError) for a name torch does not know
    (``"gpu"``), a CUDA device on a machine without CUDA, or an index past the last device
    (``cuda:7`` with two GPUs), before any model is built or output written.
    """
    from tabom.errors import UsageError

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"device {device!r}: not a device name (use cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "no CUDA device is visible" if torch.version.cuda else f"no CUDA: torch {torch.__version__} is a CPU build"
            raise UsageError(f"device {device} is not available ({why})")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"device {device} is not available ({count} CUDA device(s): cuda:0 to cuda:{count - 1})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {device} is not available (no Apple MPS on this machine)")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        backend = getattr(torch, dev.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise UsageError(f"device {device} is not available (no {dev.type} backend on this machine)")
    return dev


def load(
    name_or_path: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = "auto",
    device_map: str | dict | None = None,
) -> DiffusionLM:
    """Load a DiffusionLM by name ("tiny") or from a local folder; never downloads anything."""
    directory = existing_model_dir(name_or_path)
    config_path = directory / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path}: missing (a model folder needs config.json)")
    config = read_json(config_path)
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}:1: expected a JSON object, got {type(config).__name__}")
    device = device or (None if device_map else default_device())
    if device is not None:
        check_device(device)
    torch_dtype = resolve_dtype(dtype, device or "cuda" if device_map else device)
    model_type = str(config.get("model_type", "")).lower()
    if (directory / META_FILE).exists():
        model = _load_tabom_dir(directory, torch_dtype, device_map)
    elif model_type in ("dream", "llada"):
        # Large checkpoints load shard by shard straight onto their device (never twice in RAM).
        if model_type == "dream":
            from tabom.models.dream import load_dream as loader
        else:
            from tabom.models.llada import load_llada as loader
        model = loader(directory, dtype=torch_dtype, device_map=device_map or str(device))
        device = None
    else:
        raise ValueError(
            f"{config_path}: model_type: {model_type!r} is not a known diffusion LM "
            f"(expected a tabom folder with {META_FILE}, 'Dream' or 'llada')"
        )
    model.name = "tiny" if str(name_or_path) == "tiny" else str(directory)
    if device is not None and device_map is None:
        model.to(device)
    return model.eval()


def _load_tabom_dir(directory: Path, dtype: torch.dtype, device_map: str | dict | None) -> DiffusionLM:
    from transformers import AutoModelForCausalLM

    from tabom.models.compat import require_transformers
    from tabom.models.weights import open_shard, weight_files

    require_transformers()
    meta_path = directory / META_FILE
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}:1: expected a JSON object, got {type(meta).__name__}")
    for field in ("mask_token_id", "eos_token_id", "pad_token_id", "logits_shift", "family"):
        if field not in meta:
            raise ValueError(f"{meta_path}: {field}: missing")
    files = weight_files(directory)
    for shard in sorted(set(files.values())):  # headers only (mmap): a corrupt shard is named here
        with open_shard(shard):
            pass
    with _quiet_load_report():
        backbone, info = AutoModelForCausalLM.from_pretrained(
            str(directory), dtype=dtype, device_map=device_map, trust_remote_code=False,
            local_files_only=True, use_safetensors=True, output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported below, naming the file, instead of a RuntimeError
        )
    check_loading_info(directory, files, info)
    return DiffusionLM(
        backbone,
        load_tokenizer(directory),
        mask_token_id=meta["mask_token_id"],
        eos_token_id=meta["eos_token_id"],
        pad_token_id=meta["pad_token_id"],
        logits_shift=meta["logits_shift"],
        family=meta["family"],
        chat_template=bool(meta.get("chat_template", False)),
    )


def _drop_load_report(record: logging.LogRecord) -> bool:
    return "LOAD REPORT" not in str(record.msg)


@contextlib.contextmanager
def _quiet_load_report() -> Iterator[None]:
    """Drop transformers' LOAD REPORT table (`check_loading_info` turns what it says into one
    error). A filter, not a level: transformers 5 runs extra checks when its logger's level is
    raised."""
    logger = logging.getLogger("transformers.modeling_utils")
    logger.addFilter(_drop_load_report)
    try:
        yield
    finally:
        logger.removeFilter(_drop_load_report)


def check_loading_info(directory: Path, files: dict[str, Path], info: dict[str, Any]) -> None:
    """Raise ValueError naming the file and tensors when transformers' loading info is not clean.

    Args:
        directory: the model folder.
        files: stored tensor name -> safetensors file (`tabom.models.weights.weight_files`).
        info: `from_pretrained(..., output_loading_info=True)`'s second value: ``missing_keys``,
            ``unexpected_keys`` and ``mismatched_keys`` ((name, stored shape, model shape) tuples).

    A missing tensor would otherwise be initialised at random and an unexpected one dropped, both
    with only a logged warning: a model that decodes garbage.
    """
    shards = sorted({p.name for p in files.values()})
    where = directory / shards[0] if len(shards) == 1 else directory
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ValueError(f"{where}: {len(missing)} weight tensor(s) missing: {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else ""))
    unexpected = sorted(info.get("unexpected_keys") or ())
    if unexpected:
        shown = ", ".join(f"{n} (in {files[n].name})" if n in files else n for n in unexpected[:5])
        raise ValueError(f"{where}: {len(unexpected)} unexpected weight tensor(s) for config.json's "
                         f"architecture: {shown}" + (" ..." if len(unexpected) > 5 else ""))
    mismatched = sorted(info.get("mismatched_keys") or (), key=str)
    if mismatched:
        name, stored, expected = mismatched[0]
        shard = directory / files[name].name if name in files else where
        raise ValueError(f"{shard}: {name}: shape {tuple(stored)} but config.json implies {tuple(expected)}"
                         + (f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""))


def save(model: DiffusionLM, directory: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a DiffusionLM as a tabom folder (safetensors weights); returns the folder.

    `state_dict` (transformers naming, the backbone's keys): weights to write instead of the
    model's own (a sharded run gathers them to rank 0 first).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    try:
        model.backbone.save_pretrained(str(out), safe_serialization=True, state_dict=state_dict)
    except Exception as exc:  # noqa: BLE001  (only safetensors' write errors are changed)
        raise _as_os_error(exc, out) from exc
    model.tokenizer.save_pretrained(str(out))
    meta = {
        "family": model.family,
        "mask_token_id": model.mask_token_id,
        "eos_token_id": model.eos_token_id,
        "pad_token_id": model.pad_token_id,
        "logits_shift": model.logits_shift,
        "chat_template": model.chat_template,
    }
    # Written last and atomically: a folder cut short (full disk, kill) has no diffusion.json, and
    # loading it says so instead of reading a torn file.
    tmp = out / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / META_FILE)
    return out


def _as_os_error(exc: Exception, out: Path) -> Exception:
    """safetensors reports a failed write (full disk, read-only) as ``SafetensorError: Error while
    serializing: I/O error: ... (os error 28)``: make it the OSError it is, naming the folder."""
    found = re.search(r"os error (\d+)", str(exc)) if type(exc).__name__ == "SafetensorError" else None
    if found is None:
        return exc
    code = int(found.group(1))
    return OSError(code, os.strerror(code), str(out))


WHOLE_FILE_HASH_BYTES = 64 << 20
"""Weight files up to this size are hashed whole; larger ones by their first and last MiB."""


def checkpoint_fingerprint(name_or_path: str | Path) -> str:
    """16 hex digits that change when a checkpoint's weights change (cheap for 15 GB checkpoints).

    Hashes every `*.safetensors` file's name and size, and its content: whole up to 64 MiB (the
    tiny model), else the first and last MiB (the header of a safetensors file lists every
    tensor's offsets, and retraining changes every tensor). `tabom reproduce` keys its cached
    steps on it, so replacing the base checkpoint redoes them instead of reusing stale results.
    """
    import hashlib

    directory = existing_model_dir(name_or_path)
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{directory}: no *.safetensors weight files")
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}\n".encode())
        with path.open("rb") as fh:
            if size <= WHOLE_FILE_HASH_BYTES:
                digest.update(fh.read())
            else:
                digest.update(fh.read(1 << 20))
                fh.seek(size - (1 << 20))
                digest.update(fh.read())
    return digest.hexdigest()[:16]
