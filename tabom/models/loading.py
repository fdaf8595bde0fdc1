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

import json
from pathlib import Path
from typing import Any

import torch

from tabom.models.char_tokenizer import CharTokenizer, is_char_tokenizer_file
from tabom.models.diffusion_lm import DiffusionLM

META_FILE = "diffusion.json"
TINY_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny"


def model_dir(name_or_path: str | Path) -> Path:
    """The folder a model name stands for: "tiny" is the shipped checkpoint, anything else a path."""
    return TINY_DIR if str(name_or_path) == "tiny" else Path(name_or_path).expanduser()


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


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON file; invalid JSON raises ValueError naming ``path:line``."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None


def load_tokenizer(directory: Path) -> Any:
    """The character tokenizer when the folder has one, else transformers' AutoTokenizer (local only)."""
    tok_file = directory / "tokenizer.json"
    if is_char_tokenizer_file(tok_file):
        return CharTokenizer.from_file(tok_file)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False, local_files_only=True)


def load(
    name_or_path: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = "auto",
    device_map: str | dict | None = None,
) -> DiffusionLM:
    """Load a DiffusionLM by name ("tiny") or from a local folder; never downloads anything."""
    directory = model_dir(name_or_path)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{name_or_path}: not a model folder (give 'tiny' or a local checkpoint directory; "
            "tabom never downloads weights)"
        )
    config_path = directory / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path}: missing (a model folder needs config.json)")
    config = read_json(config_path)
    device = device or (None if device_map else default_device())
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

    require_transformers()
    meta = read_json(directory / META_FILE)
    for field in ("mask_token_id", "eos_token_id", "pad_token_id", "logits_shift", "family"):
        if field not in meta:
            raise ValueError(f"{directory / META_FILE}: {field}: missing")
    backbone = AutoModelForCausalLM.from_pretrained(
        str(directory), dtype=dtype, device_map=device_map, trust_remote_code=False,
        local_files_only=True, use_safetensors=True,
    )
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


def save(model: DiffusionLM, directory: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a DiffusionLM as a tabom folder (safetensors weights); returns the folder.

    `state_dict` (transformers naming, the backbone's keys): weights to write instead of the
    model's own (a sharded run gathers them to rank 0 first).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.backbone.save_pretrained(str(out), safe_serialization=True, state_dict=state_dict)
    model.tokenizer.save_pretrained(str(out))
    meta = {
        "family": model.family,
        "mask_token_id": model.mask_token_id,
        "eos_token_id": model.eos_token_id,
        "pad_token_id": model.pad_token_id,
        "logits_shift": model.logits_shift,
        "chat_template": model.chat_template,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out


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

    directory = model_dir(name_or_path)
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
