"""LoRA adapters on a `DiffusionLM`: attach, load (incl. the authors' released ones), save, merge, disable.

    model = attach_lora(model, r=16, alpha=16, target_modules=("q_proj", "v_proj"))   # train these
    model = load_adapter(model, "checkpoints/dream_prm12k")                          # released LoRA
    with disable_adapter(model):                                                     # frozen base (T3D)
        ref = model(input_ids)
    save_adapter(model, "run/final")      # adapter_config.json + adapter_model.safetensors
    merge_adapter(model)                  # W <- W + (alpha / r) B A, PEFT removed

The backbone is wrapped in place by PEFT (`model.backbone` becomes a `PeftModel`); `DiffusionLM`
keeps working because a `PeftModel` forwards `get_decoder()`, `get_output_embeddings()` and
`config` to the wrapped transformers model, whose q/v projections now carry the LoRA layers.

Adapter folders are read by hand (never `PeftModel.from_pretrained`), so PEFT never looks up the
`base_model_name_or_path` it names. Keys are PEFT's saved naming,
`base_model.model.<module path>.lora_{A,B}.weight`. Two layouts exist for a model family:

- *original*: the module tree of the model's own code. Dream's is the Qwen2 tree (so both layouts
  coincide for Dream); LLaDA's is `model.transformer.blocks.N.{q_proj, attn_out, ff_proj, ...}`.
  This is what the authors publish and what `save_adapter` writes by default, so a LLaDA adapter
  trained with tabom loads onto LLaDA's own model (`PeftModel.from_pretrained`).
- *tabom*: the transformers Llama tree tabom runs LLaDA as (`model.layers.N.self_attn.q_proj`).

`load_adapter` accepts either (`adapter_layout` tells which from the keys; keys that fit neither
are refused) and renames to the tree tabom builds; `target_modules` are renamed with them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from tabom.models.diffusion_lm import DiffusionLM
from tabom.models.files import read_json

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_MARKERS = (".lora_", ".modules_to_save")
_PREFIX = "base_model.model."


def has_adapter(model: DiffusionLM) -> bool:
    """True when ``model.backbone`` is wrapped by PEFT (a ``PeftModel``)."""
    from peft import PeftModel

    return isinstance(model.backbone, PeftModel)


def attach_lora(
    model: DiffusionLM,
    r: int = 16,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
) -> DiffusionLM:
    """Wrap `model.backbone` with fresh LoRA layers (B = 0, so outputs are unchanged); base frozen."""
    from peft import LoraConfig

    if has_adapter(model):
        raise ValueError("attach_lora: the model already has an adapter (merge_adapter it first)")
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules), bias="none",
        base_model_name_or_path=model.name or None,
    )
    model.backbone = _wrap(model.backbone, config)
    return model


def _wrap(backbone: Any, config: Any) -> Any:
    """get_peft_model, keeping the backbone's train/eval mode (new LoRA dropouts start in train mode)."""
    from peft import get_peft_model

    training = backbone.training
    backbone.config._name_or_path = ""  # PEFT would read a config from this path: never let it look
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*base_model_name_or_path.*was renamed")
        # peft reads transformers' deprecated `is_gradient_checkpointing`; nothing a user can change
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        wrapped = get_peft_model(backbone, config)
    return wrapped.train(training)


def _split_key(key: str) -> tuple[str, str]:
    """'base_model.model.M.lora_A.weight' -> ('M', '.lora_A.weight')."""
    cut = min((key.find(m) for m in _MARKERS if m in key), default=-1)
    if cut < 0:
        raise ValueError(f"{key}: not a PEFT adapter weight name (no .lora_ or .modules_to_save)")
    module, suffix = key[:cut], key[cut:]
    return (module[len(_PREFIX):] if module.startswith(_PREFIX) else module), suffix


def rename_key(key: str, family: str) -> str:
    """A saved adapter key in the tree tabom builds for `family` (LLaDA tree -> Llama tree)."""
    body, suffix = _split_key(key)
    if family == "llada" or body.startswith("model.transformer."):
        from tabom.models.llada import llada_module_to_llama

        mapped = llada_module_to_llama(body)
        if mapped is not None:
            body = mapped
    return _PREFIX + body + suffix


def llama_module_to_llada(name: str) -> str | None:
    """'model.layers.3.self_attn.o_proj' -> 'model.transformer.blocks.3.attn_out'; None if unknown."""
    from tabom.models.llada import BLOCK, TOP_LEVEL

    for src, dst in TOP_LEVEL.items():
        if name == dst:
            return src
    parts = name.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[2].isdigit():
        for src, dst in BLOCK.items():
            if parts[3] == dst:
                return f"model.transformer.blocks.{parts[2]}.{src}"
    return None


_TABOM_TOPS = ("model.layers.", "model.embed_tokens", "model.norm", "lm_head")
_LLADA_TOP = "model.transformer."


def adapter_layout(keys: Sequence[str], family: str, source: str | Path = "adapter") -> str:
    """'original' (the model's own module tree) or 'tabom' (the tree tabom builds), from the keys.

    For Dream and the tiny model the two trees coincide ('original' is returned). Raises
    ValueError naming `source` when a key fits neither layout, or LLaDA keys mix both.
    """
    bodies = [_split_key(k)[0] for k in keys]
    if not bodies:
        raise ValueError(f"{source}: no adapter tensors")
    tabom = [b for b in bodies if b.startswith(_TABOM_TOPS)]
    if family != "llada":
        if len(tabom) == len(bodies):
            return "original"
        bad = next(b for b in bodies if not b.startswith(_TABOM_TOPS))
        raise ValueError(
            f"{source}: adapter key module {bad} matches neither layout of a {family} model "
            "(its own tree: model.layers.N.self_attn.q_proj, ...)"
        )
    original = [b for b in bodies if b.startswith(_LLADA_TOP)]
    if len(original) == len(bodies):
        return "original"
    if len(tabom) == len(bodies):
        return "tabom"
    if original and tabom:
        raise ValueError(f"{source}: adapter keys mix LLaDA's module layout ({original[0]}) and tabom's ({tabom[0]})")
    bad = next(b for b in bodies if not b.startswith((*_TABOM_TOPS, _LLADA_TOP)))
    raise ValueError(
        f"{source}: adapter key module {bad} matches neither LLaDA's layout "
        "(model.transformer.blocks.N.q_proj) nor tabom's (model.layers.N.self_attn.q_proj)"
    )


def _rename_targets(targets: Any, family: str, modules: set[str] | None = None) -> Any:
    """LLaDA target names -> Llama ones; `ff_out` (down_proj or lm_head) resolved by `modules`."""
    if family != "llada" or not isinstance(targets, list):
        return targets
    from tabom.models.llada import TARGET_NAMES

    out: list[str] = []
    for name in targets:
        names = TARGET_NAMES.get(name, [name])
        if modules is not None and len(names) > 1:
            present = [n for n in names if any(m == n or m.endswith("." + n) for m in modules)]
            names = present or names
        out.extend(names)
    return sorted(set(out))


def _targets_to_llada(targets: Any) -> Any:
    """Llama target names -> LLaDA's (o_proj -> attn_out, gate_proj -> ff_proj, ...)."""
    if not isinstance(targets, list):
        return targets
    from tabom.models.llada import TARGET_NAMES

    back = {llama: llada for llada, names in TARGET_NAMES.items() for llama in names}
    return sorted({back.get(t, t) for t in targets})


def read_adapter_state(path: str | Path, family: str) -> dict[str, torch.Tensor]:
    """The adapter tensors of folder `path`, keyed in the tree tabom builds for `family`.

    Either layout is accepted (see `adapter_layout`); keys fitting neither raise ValueError.
    """
    from safetensors.torch import load_file

    weights_path = Path(path) / WEIGHTS_FILE
    if not weights_path.exists():
        bins = sorted(p.name for p in Path(path).glob("*.bin"))
        hint = f" (found {', '.join(bins)}: pickles are refused, save as safetensors)" if bins else ""
        raise FileNotFoundError(f"{weights_path}: missing{hint}")
    raw = load_file(str(weights_path))
    adapter_layout(list(raw), family, weights_path)
    return {rename_key(k, family): v for k, v in raw.items()}


def read_adapter_config(path: Path, family: str, modules: set[str] | None = None) -> Any:
    """`LoraConfig` from an adapter_config.json (unknown fields from other PEFT versions dropped)."""
    from peft import LoraConfig

    cfg_path = path / CONFIG_FILE
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path}: missing (a PEFT adapter folder needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    raw = read_json(cfg_path)
    if str(raw.get("peft_type", "LORA")).upper() != "LORA":
        raise ValueError(f"{cfg_path}:1: peft_type: {raw.get('peft_type')!r} is not supported (LoRA only)")
    for field in ("r", "lora_alpha", "target_modules"):
        if field not in raw:
            raise ValueError(f"{cfg_path}:1: {field}: missing")
    known = {f.name for f in dataclasses.fields(LoraConfig)}
    kwargs = {k: v for k, v in raw.items() if k in known and k not in ("peft_type", "auto_mapping", "peft_version")}
    kwargs["target_modules"] = _rename_targets(kwargs["target_modules"], family, modules)
    return LoraConfig(**kwargs)


def load_adapter(model: DiffusionLM, path: str | Path, trainable: bool = False) -> DiffusionLM:
    """Attach the LoRA adapter saved in folder `path` (adapter_config.json + adapter_model.safetensors).

    Every adapter tensor must find its LoRA layer and every LoRA layer must get a tensor, else the
    error names the file and the keys. `trainable=False` freezes the adapter (evaluation).
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    path = Path(path)
    if has_adapter(model):
        raise ValueError(f"{path}: the model already has an adapter (merge_adapter or reload the base first)")
    weights_path = path / WEIGHTS_FILE
    read_adapter_config(path, model.family)  # a bad config is named before the weights are read
    state = read_adapter_state(path, model.family)
    config = read_adapter_config(path, model.family, {_split_key(k)[0] for k in state})
    config.inference_mode = not trainable
    peft_model = _wrap(model.backbone, config)
    expected = set(get_peft_model_state_dict(peft_model))  # saved naming, e.g. ...q_proj.lora_A.weight
    unexpected, missing = sorted(set(state) - expected), sorted(expected - set(state))
    if unexpected or missing:
        model.backbone = peft_model.unload()  # take the half-attached LoRA layers out again
        raise ValueError(
            f"{weights_path}: adapter does not fit the model: {len(unexpected)} unexpected key(s) "
            f"{unexpected[:3]}, {len(missing)} missing key(s) {missing[:3]} "
            f"(target_modules {sorted(config.target_modules)})"
        )
    set_peft_model_state_dict(peft_model, state)
    for name, param in peft_model.named_parameters():  # base always frozen; LoRA only if trainable
        param.requires_grad_(trainable and ".lora_" in name)
    model.backbone = peft_model
    return model


def save_adapter(model: DiffusionLM, path: str | Path, layout: str = "original",
                 state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write adapter_config.json + adapter_model.safetensors (PEFT's key naming) to folder `path`.

    `layout="original"` (default) keys the tensors and `target_modules` on the model's own module
    tree (LLaDA: `model.transformer.blocks.N.q_proj`, loadable onto LLaDA's own code); "tabom"
    keeps the transformers tree tabom runs (identical for Dream and the tiny model).
    `state_dict`: the PEFT model's whole state to take the adapter from (gathered from shards).
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    if layout not in ("original", "tabom"):
        raise ValueError(f"layout: {layout!r} is not 'original' or 'tabom'")
    if not has_adapter(model):
        raise ValueError(f"{path}: the model has no adapter to save")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    peft_model = model.backbone
    state = get_peft_model_state_dict(peft_model, state_dict=state_dict)
    cfg = peft_model.peft_config["default"].to_dict()
    cfg = {k: (sorted(v) if isinstance(v, set) else v) for k, v in cfg.items()}
    if layout == "original" and model.family == "llada":
        state = {_to_llada_key(k): v for k, v in state.items()}
        cfg["target_modules"] = _targets_to_llada(cfg.get("target_modules"))
    save_file({k: v.detach().to("cpu").contiguous() for k, v in state.items()}, str(out / WEIGHTS_FILE))
    cfg["peft_type"] = "LORA"
    cfg["base_model_name_or_path"] = model.name or cfg.get("base_model_name_or_path")
    (out / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, default=str) + "\n")
    return out


def _to_llada_key(key: str) -> str:
    body, suffix = _split_key(key)
    mapped = llama_module_to_llada(body)
    if mapped is None:
        raise ValueError(f"{key}: no LLaDA module corresponds to {body} (save with layout='tabom')")
    return _PREFIX + mapped + suffix


def merge_adapter(model: DiffusionLM) -> DiffusionLM:
    """Fold the adapter into the base weights (W <- W + scaling * B A) and drop PEFT."""
    if not has_adapter(model):
        raise ValueError("merge_adapter: the model has no adapter")
    model.backbone = model.backbone.merge_and_unload()
    return model


@contextlib.contextmanager
def disable_adapter(model: DiffusionLM) -> Iterator[DiffusionLM]:
    """Run the frozen base model inside the block (the adapter stays attached and comes back after)."""
    if not has_adapter(model):
        raise ValueError("disable_adapter: the model has no adapter, so there is no frozen base to run")
    flags = {n: p.requires_grad for n, p in model.backbone.named_parameters()}
    try:
        with model.backbone.disable_adapter():
            yield model
    finally:  # PEFT re-enables the adapter as trainable on exit; restore what the caller had
        for n, p in model.backbone.named_parameters():
            p.requires_grad_(flags[n])


def lora_parameters(model: DiffusionLM) -> dict[str, torch.Tensor]:
    """The LoRA tensors by name (what an optimizer trains)."""
    return {n: p for n, p in model.backbone.named_parameters() if ".lora_" in n}
