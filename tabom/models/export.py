"""Export a model (optionally with a LoRA adapter merged in) in its original on-disk layout.

    export_model("/ckpt/LLaDA-8B-Instruct", "out/llada_tabom", adapter="runs/llada_prm12k/final")
    export_model("runs/dream_full/final", "out/dream", fmt="original")   # a tabom full fine-tune
    export_model("/ckpt/Dream-v0-Instruct-7B", "out/dream_hf", fmt="hf")  # transformers layout

`fmt="original"` writes what the model's own code (and tools built on it: Fast-dLLM, dInfer, the
authors' scripts) loads with `trust_remote_code`:

- Dream: `config.json` with `model_type: Dream`, Qwen2 tensor names (Dream's own), its
  `generation_config.json`, the tokenizer files;
- LLaDA: `config.json` with `model_type: llada` and LLaDA's fields (`d_model`, `n_heads`, ...),
  tensors under `model.transformer.*` (`wte`, `blocks.N.attn_out`, ...), `ff_out` absent when
  `weight_tying`; tied or untied as the source.

Weights are written as `model.safetensors`, or as `model-0000i-of-0000n.safetensors` shards with
`model.safetensors.index.json` when they exceed `max_shard_bytes`. With `dtype="source"` each
tensor keeps the dtype it is stored in by the source, so exporting an unmodified original-layout
checkpoint reproduces its tensors bit for bit under the same names. When the source is an
original-layout folder its `config.json`, `generation_config.json`, tokenizer files and modeling
`*.py` files are copied unchanged; a tabom folder (a full fine-tune, `diffusion.json`) gets a
config built from its transformers config, and the modeling files must be copied from the
original checkpoint. `fmt="hf"` writes tabom's own layout (`tabom.models.save`).

The output folder is written under a temporary name beside it and renamed into place at the end:
a failure leaves nothing behind, and an existing non-empty folder is refused unless `overwrite`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tabom.models.diffusion_lm import DiffusionLM
from tabom.models.files import read_json
from tabom.models.loading import META_FILE, model_dir

FORMATS = ("original", "hf")
DEFAULT_SHARD_BYTES = 5 * 1000**3  # transformers' default max_shard_size ("5GB")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json", "added_tokens.json")
DREAM_AUTO_MAP = {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"}
LLADA_AUTO_MAP = {
    "AutoConfig": "configuration_llada.LLaDAConfig",
    "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
    "AutoModel": "modeling_llada.LLaDAModelLM",
}
_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}
_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


@dataclass(frozen=True)
class ExportResult:
    """What `export_model` wrote: the folder, its layout, tensor count, shard files and bytes."""

    out: Path
    fmt: str
    family: str
    tensors: int
    shards: list[str]
    total_bytes: int
    notes: list[str]


def parse_size(text: str | int) -> int:
    """'5GB' / '500MB' / '2GiB' / '1000' -> bytes (decimal units, binary with 'i')."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?[bB]?\s*", str(text))
    if not m:
        raise ValueError(f"max_shard_size: {text!r} is not a size (e.g. 5GB, 500MB, 1000000)")
    unit = (m.group(2) or "").lower()
    base = 1024 if unit.endswith("i") else 1000
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[unit[:1]]
    size = int(float(m.group(1)) * base**power)
    if size <= 0:
        raise ValueError(f"max_shard_size: {text!r} must be positive")
    return size


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse an output path that is a file, or a non-empty folder unless `overwrite`."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder (export writes a model folder)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out}: exists and is not empty (pass --overwrite to replace it)")


def stored_dtypes(directory: Path) -> dict[str, torch.dtype]:
    """Every tensor name stored in the folder's safetensors -> its stored dtype (headers only)."""
    from safetensors import safe_open

    from tabom.models.weights import weight_files

    out: dict[str, torch.dtype] = {}
    by_file: dict[Path, list[str]] = {}
    for name, path in weight_files(directory).items():
        by_file.setdefault(path, []).append(name)
    for path, names in by_file.items():
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name in names:
                code = f.get_slice(name).get_dtype()
                out[name] = _DTYPES.get(code, torch.float32)
    return out


def source_kind(directory: Path) -> str:
    """'tabom' (a folder with diffusion.json), 'dream' or 'llada' (original layouts)."""
    if (directory / META_FILE).exists():
        return "tabom"
    model_type = str(read_json(directory / "config.json").get("model_type", "")).lower()
    if model_type not in ("dream", "llada"):
        raise ValueError(f"{directory / 'config.json'}: model_type: {model_type!r} is not Dream, llada or a tabom folder")
    return model_type


def hf_to_original(family: str, backbone_config: Any) -> dict[str, str]:
    """transformers parameter name -> name in the family's original layout (every stored tensor)."""
    n_layers = int(backbone_config.num_hidden_layers)
    tied = bool(getattr(backbone_config, "tie_word_embeddings", False))
    if family == "llada":
        from tabom.models.llada import weight_mapping

        return {hf: stored for stored, hf in weight_mapping(n_layers, tied).items()}
    if family == "dream":
        return {}  # identity (filled from the state dict); Dream's own tree is Qwen2's
    raise ValueError(f"{family}: no original layout to export to (only Dream and LLaDA have one); use --format hf")


def _transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


def dream_config(model: DiffusionLM, dtype_name: str) -> dict[str, Any]:
    """A Dream `config.json` for a Qwen2 backbone (what Dream's `configuration_dream.py` reads)."""
    from tabom.models.dream import CONFIG_KEYS

    c = model.backbone.config
    rope = dict(getattr(c, "rope_parameters", None) or {})
    theta = float(rope.pop("rope_theta", getattr(c, "rope_theta", 10000.0)))
    scaling = rope if rope.get("rope_type", "default") != "default" else None
    cfg: dict[str, Any] = {"architectures": ["DreamModel"], "auto_map": dict(DREAM_AUTO_MAP), "model_type": "Dream"}
    cfg.update({src: getattr(c, dst) for src, dst in CONFIG_KEYS.items() if getattr(c, dst, None) is not None})
    cfg.update(
        bos_token_id=c.bos_token_id, eos_token_id=model.eos_token_id, pad_token_id=model.pad_token_id,
        mask_token_id=model.mask_token_id, rope_theta=theta, rope_scaling=scaling,
        max_window_layers=c.num_hidden_layers, sliding_window=None, use_sliding_window=False,
        use_cache=True, torch_dtype=dtype_name, transformers_version=_transformers_version(),
    )
    return dict(sorted(cfg.items()))


def llada_config(model: DiffusionLM, dtype_name: str) -> dict[str, Any]:
    """A LLaDA `config.json` for a Llama backbone, with the fields LLaDA's own config reads."""
    from tabom.models.llada import REQUIRED_FLAGS

    c = model.backbone.config
    rope = dict(getattr(c, "rope_parameters", None) or {})
    cfg: dict[str, Any] = dict(REQUIRED_FLAGS)
    cfg.update(
        architectures=["LLaDAModelLM"], auto_map=dict(LLADA_AUTO_MAP), model_type="llada",
        d_model=c.hidden_size, n_heads=c.num_attention_heads, n_kv_heads=c.num_key_value_heads,
        n_layers=c.num_hidden_layers, mlp_hidden_size=c.intermediate_size, mlp_ratio=4,
        vocab_size=c.vocab_size, embedding_size=c.vocab_size, max_sequence_length=c.max_position_embeddings,
        rope_theta=float(rope.get("rope_theta", getattr(c, "rope_theta", 10000.0))), rope_full_precision=True,
        rms_norm_eps=c.rms_norm_eps, weight_tying=bool(c.tie_word_embeddings),
        mask_token_id=model.mask_token_id, eos_token_id=model.eos_token_id, pad_token_id=model.pad_token_id,
        attention_dropout=0.0, residual_dropout=0.0, embedding_dropout=0.0, bias_for_layer_norm=False,
        attention_layer_norm_with_affine=True, multi_query_attention=None, flash_attention=False,
        init_device="meta", init_fn="mitchell", init_std=0.02, init_cutoff_factor=None, alibi_bias_max=8.0,
        precision="amp_bf16", use_cache=False, transformers_version=_transformers_version(),
    )
    return dict(sorted(cfg.items()))


def write_safetensors(tensors: dict[str, torch.Tensor], out: Path, max_shard_bytes: int) -> list[str]:
    """`model.safetensors`, or shards + `model.safetensors.index.json` past `max_shard_bytes`.

    Tensors are packed in name order; a shard closes when the next tensor would pass the limit
    (a single tensor larger than the limit gets a shard of its own). Returns the file names.
    """
    from safetensors.torch import save_file

    names = sorted(tensors)
    groups: list[list[str]] = [[]]
    size = 0
    for name in names:
        nbytes = tensors[name].numel() * tensors[name].element_size()
        if groups[-1] and size + nbytes > max_shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(name)
        size += nbytes
    meta = {"format": "pt"}
    if len(groups) == 1:
        save_file({n: tensors[n].contiguous() for n in names}, str(out / "model.safetensors"), metadata=meta)
        return ["model.safetensors"]
    files, weight_map = [], {}
    for i, group in enumerate(groups, start=1):
        fname = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: tensors[n].contiguous() for n in group}, str(out / fname), metadata=meta)
        weight_map.update({n: fname for n in group})
        files.append(fname)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return files


def _load_dtype(source: dict[str, torch.dtype], adapter: Path | None, dtype: str) -> torch.dtype:
    """fp32 to merge an adapter (or for mixed stored dtypes), else the one stored dtype."""
    if dtype != "source":
        from tabom.models.loading import resolve_dtype

        return resolve_dtype(dtype, "cpu")
    kinds = set(source.values())
    return next(iter(kinds)) if adapter is None and len(kinds) == 1 else torch.float32


def original_tensors(model: DiffusionLM, source: dict[str, torch.dtype], to_stored: dict[str, str],
                     dtype: str) -> dict[str, torch.Tensor]:
    """The backbone's tensors under original names, in the source's stored dtype (or `dtype`)."""
    from tabom.models.loading import resolve_dtype

    config = model.backbone.config
    tied = bool(getattr(config, "tie_word_embeddings", False))
    forced = None if dtype == "source" else resolve_dtype(dtype, "cpu")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.backbone.state_dict().items():
        if tied and name == "lm_head.weight":
            continue
        stored = to_stored.get(name, name) if to_stored else name
        if to_stored and name not in to_stored:
            raise ValueError(f"export: no original name for parameter {name} ({model.family})")
        want = forced or source.get(name) or source.get(stored) or tensor.dtype
        out[stored] = tensor.detach().to("cpu", dtype=want).contiguous()
    return out


def _copy_side_files(src: Path, dst: Path, kind: str) -> list[str]:
    """Tokenizer files always; config, generation config and `*.py` from original-layout sources."""
    names = [n for n in TOKENIZER_FILES if (src / n).exists()]
    if kind != "tabom":
        names += ["config.json"] + [n for n in ("generation_config.json",) if (src / n).exists()]
        names += sorted(p.name for p in src.glob("*.py"))
    for name in names:
        shutil.copy2(src / name, dst / name)
    return names


def _write_original(model: DiffusionLM, src: Path, kind: str, tmp: Path, dtype: str,
                    source: dict[str, torch.dtype], max_shard_bytes: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Weights, config and side files of the original layout into `tmp`; returns tensors and notes."""
    to_stored = hf_to_original(model.family, model.backbone.config)
    if kind == "llada":  # the source dtypes are keyed by stored names; re-key them by hf names
        source = {hf: source[st] for hf, st in to_stored.items() if st in source}
    tensors = original_tensors(model, source, to_stored, dtype)
    copied = _copy_side_files(src, tmp, kind)
    notes: list[str] = []
    dtype_name = _DTYPE_NAMES.get(next(iter(tensors.values())).dtype, "float32")
    if kind == "tabom":
        build = dream_config if model.family == "dream" else llada_config
        (tmp / "config.json").write_text(json.dumps(build(model, dtype_name), indent=2) + "\n")
        if model.family == "dream":
            gen = {"bos_token_id": model.backbone.config.bos_token_id, "eos_token_id": model.eos_token_id,
                   "pad_token_id": model.pad_token_id, "mask_token_id": model.mask_token_id}
            (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
        if not any(p.endswith(".py") for p in copied):
            notes.append("copy the modeling *.py files of the original checkpoint into the folder to load it "
                         "with the model's own code (trust_remote_code)")
    elif dtype != "source":
        cfg = read_json(tmp / "config.json")
        cfg["torch_dtype"] = dtype_name
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return tensors, notes


def export_model(
    model: str | Path,
    out: str | Path,
    *,
    adapter: str | Path | None = None,
    fmt: str = "original",
    overwrite: bool = False,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    dtype: str = "source",
) -> ExportResult:
    """Load `model` on the CPU, merge `adapter` if given, and write it to folder `out`.

    Args:
        model: a Dream or LLaDA folder in its original layout, or a tabom folder (diffusion.json).
        out: the folder to write; must not exist or be empty unless `overwrite`.
        adapter: a PEFT LoRA folder (either layout) merged as W + (alpha / r) B A.
        fmt: "original" (the family's own layout) or "hf" (tabom's transformers layout).
        max_shard_bytes: shard the weights past this many bytes (original layout).
        dtype: "source" (each tensor as the source stores it) or bfloat16 / float16 / float32.
    """
    from tabom.models.adapters import load_adapter, merge_adapter
    from tabom.models.loading import load, save

    if fmt not in FORMATS:
        raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    out = Path(out)
    check_target(out, overwrite)
    src = model_dir(model)
    if not (src / "config.json").exists():
        raise FileNotFoundError(f"{src / 'config.json'}: missing (export needs a model folder)")
    kind = source_kind(src)
    if fmt == "original" and kind == "tabom":
        family = str(read_json(src / META_FILE).get("family"))
        if family not in ("dream", "llada"):
            raise ValueError(f"{src / META_FILE}: family: {family!r} has no original layout to export to; use --format hf")
    source = stored_dtypes(src)
    adapter_path = Path(adapter) if adapter is not None else None
    lm = load(model, device="cpu", dtype=_load_dtype(source, adapter_path, dtype))
    if adapter_path is not None:
        lm = merge_adapter(load_adapter(lm, adapter_path))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    notes: list[str] = []
    try:
        if fmt == "hf":
            if dtype != "source" or len(set(source.values())) == 1:
                lm.to(_load_dtype(source, None, dtype))
            save(lm, tmp)
            tensors = {n: t for n, t in lm.backbone.state_dict().items()}
            shards = sorted(p.name for p in tmp.glob("*.safetensors"))
        else:
            tensors, notes = _write_original(lm, src, kind, tmp, dtype, source, max_shard_bytes)
            shards = write_safetensors(tensors, tmp, max_shard_bytes)
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, fmt, lm.family, len(tensors), shards, total, notes)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished `tmp` to `out`; an existing `out` is removed only after the rename."""
    if not out.exists():
        tmp.rename(out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
