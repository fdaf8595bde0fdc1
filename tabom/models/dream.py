"""Load a Dream checkpoint folder (e.g. Dream-v0-Instruct-7B) as a tabom `DiffusionLM`, no remote code.

Dream is Qwen2.5 run bidirectionally: its `modeling_dream.py` has the Qwen2 module tree
(`model.embed_tokens`, `model.layers.N.self_attn.{q,k,v,o}_proj` with bias on q/k/v,
`model.layers.N.mlp.{gate,up,down}_proj`, `model.norm`, `lm_head`) and its `config.json` has Qwen2's
keys plus `mask_token_id`. So the weights load unchanged into transformers' `Qwen2ForCausalLM`, which
`DiffusionLM` makes bidirectional. Dream predicts token p from the hidden state at p - 1
(`logits_shift=True`).

    model = load_dream(Path("/ckpt/Dream-v0-Instruct-7B"), dtype=torch.bfloat16, device_map="cuda")

The released tokenizer folder names a remote-code class (`DreamTokenizer`, a copy of Qwen2's
byte-level BPE tokenizer over `vocab.json` + `merges.txt`), so it is read with transformers'
`Qwen2Tokenizer` instead; `tokenizer_config.json` still supplies the special tokens and the chat
template. Nothing in the folder's `*.py` files is ever imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tabom.models.compat import require_transformers
from tabom.models.diffusion_lm import DiffusionLM
from tabom.models.files import read_json
from tabom.models.weights import build_and_load, config_error, read_family_config

# Dream config.json key -> Qwen2Config argument (same names; the table is the contract).
CONFIG_KEYS: dict[str, str] = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
    "num_hidden_layers": "num_hidden_layers",
    "num_attention_heads": "num_attention_heads",
    "num_key_value_heads": "num_key_value_heads",
    "hidden_act": "hidden_act",
    "max_position_embeddings": "max_position_embeddings",
    "rms_norm_eps": "rms_norm_eps",
    "tie_word_embeddings": "tie_word_embeddings",
    "attention_dropout": "attention_dropout",
    "initializer_range": "initializer_range",
}
REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
DREAM_MASK_ID = 151666  # "<|mask|>" in the published tokenizer
DREAM_EOS_ID = 151643  # "<|endoftext|>", also the pad token


def qwen2_config(config: dict[str, Any], path: Path) -> Any:
    """transformers `Qwen2Config` equivalent to a Dream `config.json` (validated field by field)."""
    from transformers import Qwen2Config

    require_transformers()
    for key in REQUIRED:
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise config_error(path, key, f"must be a positive integer, got {value!r}")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise config_error(path, "num_attention_heads", "must divide hidden_size")
    kv = config.get("num_key_value_heads") or config["num_attention_heads"]
    if config["num_attention_heads"] % kv:
        raise config_error(path, "num_key_value_heads", f"{kv} must divide num_attention_heads")
    if config.get("use_sliding_window"):
        raise config_error(path, "use_sliding_window", "sliding-window attention is not supported (Dream uses full attention)")
    if config.get("hidden_act", "silu") != "silu":
        raise config_error(path, "hidden_act", f"expected 'silu', got {config.get('hidden_act')!r}")
    kwargs = {dst: config[src] for src, dst in CONFIG_KEYS.items() if config.get(src) is not None}
    kwargs["num_key_value_heads"] = kv
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": float(config.get("rope_theta", 10000.0))}
    scaling = config.get("rope_scaling")
    if scaling:
        if not isinstance(scaling, dict):
            raise config_error(path, "rope_scaling", f"expected an object, got {scaling!r}")
        rope.update(scaling)
        rope["rope_type"] = scaling.get("rope_type", scaling.get("type", "default"))
    qwen = Qwen2Config(
        **kwargs,
        rope_parameters=rope,
        use_sliding_window=False,
        use_cache=False,
        pad_token_id=_first_id(config.get("pad_token_id")),
        bos_token_id=_first_id(config.get("bos_token_id")),
        eos_token_id=_first_id(config.get("eos_token_id")),
        attn_implementation="sdpa",
    )
    qwen.is_causal = False
    return qwen


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else int(value)


def load_dream_tokenizer(directory: Path) -> Any:
    """The tokenizer of a Dream folder without remote code.

    `tokenizer_class: DreamTokenizer` (or an `auto_map`) -> transformers' `Qwen2Tokenizer` over
    `tokenizer.json` or `vocab.json` + `merges.txt`; any other class -> `AutoTokenizer`.
    """
    from transformers import AutoTokenizer, Qwen2Tokenizer

    cfg_path = directory / "tokenizer_config.json"
    tok_cfg = read_json(cfg_path) if cfg_path.exists() else {}
    remote = tok_cfg.get("tokenizer_class") in (None, "DreamTokenizer") or "auto_map" in tok_cfg
    has_files = (directory / "tokenizer.json").exists() or (
        (directory / "vocab.json").exists() and (directory / "merges.txt").exists()
    )
    if not has_files:
        raise FileNotFoundError(f"{directory}: no tokenizer.json or vocab.json + merges.txt (Dream tokenizer files)")
    cls = Qwen2Tokenizer if remote else AutoTokenizer
    return cls.from_pretrained(str(directory), trust_remote_code=False, local_files_only=True)


def special_ids(directory: Path, config: dict[str, Any], tokenizer: Any) -> tuple[int, int, int]:
    """(mask, eos, pad): config.json first, then generation_config.json, then the tokenizer."""
    gen_path = directory / "generation_config.json"
    gen = read_json(gen_path) if gen_path.exists() else {}

    def pick(field: str, tok_value: Any) -> int | None:
        for source in (config.get(field), gen.get(field), tok_value):
            if _first_id(source) is not None:
                return _first_id(source)
        return None

    mask = pick("mask_token_id", getattr(tokenizer, "mask_token_id", None))
    eos = pick("eos_token_id", getattr(tokenizer, "eos_token_id", None))
    if mask is None:
        raise config_error(directory / "config.json", "mask_token_id", f"missing (published Dream uses {DREAM_MASK_ID})")
    if eos is None:
        raise config_error(directory / "config.json", "eos_token_id", f"missing (published Dream uses {DREAM_EOS_ID})")
    pad = pick("pad_token_id", getattr(tokenizer, "pad_token_id", None))
    return mask, eos, eos if pad is None else pad


def load_dream(
    directory: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    device_map: str | dict | torch.device | None = None,
) -> DiffusionLM:
    """Load a Dream-layout folder (`model_type: "Dream"`) as a bidirectional Qwen2 `DiffusionLM`.

    Args:
        directory: holds config.json, safetensors weights (single or sharded) and the tokenizer.
        dtype: parameter dtype; each tensor is cast as it is read (bf16 on GPU is the caller's choice).
        device_map: None (CPU), a device ("cuda:0"), "auto"/"balanced"/"sequential", or {prefix: device}.
    """
    from transformers import Qwen2ForCausalLM

    directory = Path(directory)
    config_path, config = read_family_config(directory, "Dream")
    qwen = qwen2_config(config, config_path)
    backbone = build_and_load(Qwen2ForCausalLM, qwen, directory, None, dtype=dtype, device_map=device_map)
    tokenizer = load_dream_tokenizer(directory)
    mask, eos, pad = special_ids(directory, config, tokenizer)
    return DiffusionLM(
        backbone,
        tokenizer,
        mask_token_id=mask,
        eos_token_id=eos,
        pad_token_id=pad,
        logits_shift=True,
        family="dream",
        name=str(directory),
        chat_template=bool(getattr(tokenizer, "chat_template", None)),
    ).eval()
