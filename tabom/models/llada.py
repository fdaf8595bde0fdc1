"""Load a LLaDA checkpoint folder (e.g. LLaDA-8B-Instruct) as a tabom `DiffusionLM`, no remote code.

LLaDA's `modeling_llada.py` (an OLMo derivative) with `block_type: "llama"` is a Llama decoder
without the causal mask: RMSNorm before attention and MLP, RoPE by half-rotation, attention with
`n_kv_heads` key/value heads, and an MLP `ff_out(silu(ff_proj(x)) * up_proj(x))` — `ff_proj` is
the gate (it gets the activation), `up_proj` the up and the block's `ff_out` the down projection.
Its parameters live under `model.transformer` with OLMo names; `LLADA_TO_LLAMA` renames them into
transformers' `LlamaForCausalLM`, and `llama_config` maps the config keys. Logits are not shifted:
position p predicts token p.

    model = load_llada(Path("/ckpt/LLaDA-8B-Instruct"), dtype=torch.bfloat16, device_map="cuda")

Only what the published checkpoints use is accepted (`block_type: llama`, `activation_type:
silu`, RMS norm with affine weight, RoPE, no biases, no QK-norm, no logit scaling); anything else
fails with the config field named.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from tabom.models.compat import require_transformers
from tabom.models.diffusion_lm import DiffusionLM
from tabom.models.files import load_tokenizer, read_json
from tabom.models.weights import build_and_load, config_error, read_family_config

LLADA_MASK_ID = 126336  # "<|mdm_mask|>"
LLADA_EOS_ID = 126081  # "<|endoftext|>"

# Module names: LLaDA (under model.transformer) -> transformers Llama.
TOP_LEVEL = {
    "model.transformer.wte": "model.embed_tokens",
    "model.transformer.ln_f": "model.norm",
    "model.transformer.ff_out": "lm_head",
}
BLOCK = {
    "attn_norm": "input_layernorm",
    "ff_norm": "post_attention_layernorm",
    "q_proj": "self_attn.q_proj",
    "k_proj": "self_attn.k_proj",
    "v_proj": "self_attn.v_proj",
    "attn_out": "self_attn.o_proj",
    "ff_proj": "mlp.gate_proj",
    "up_proj": "mlp.up_proj",
    "ff_out": "mlp.down_proj",
}
# Short module names as used in PEFT target_modules: LLaDA -> Llama.
TARGET_NAMES = {"attn_out": ["o_proj"], "ff_proj": ["gate_proj"], "ff_out": ["down_proj", "lm_head"], "wte": ["embed_tokens"]}
_BLOCK_RE = re.compile(r"^model\.transformer\.blocks\.(\d+)\.([a-z_]+)$")

# Config flags the conversion relies on: key -> the only accepted value (also assumed when absent;
# null is accepted for False).
REQUIRED_FLAGS: dict[str, Any] = {
    "block_type": "llama",
    "activation_type": "silu",
    "layer_norm_type": "rms",
    "rope": True,
    "alibi": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "attention_layer_norm": False,
    "scale_logits": False,
    "input_emb_norm": False,
    "layer_norm_with_affine": True,
    "block_group_size": 1,
}


def llada_module_to_llama(name: str) -> str | None:
    """'model.transformer.blocks.3.attn_out' -> 'model.layers.3.self_attn.o_proj'; None if unknown."""
    if name in TOP_LEVEL:
        return TOP_LEVEL[name]
    m = _BLOCK_RE.match(name)
    if m and m.group(2) in BLOCK:
        return f"model.layers.{m.group(1)}.{BLOCK[m.group(2)]}"
    return None


def weight_mapping(n_layers: int, weight_tying: bool) -> dict[str, str]:
    """Stored LLaDA tensor name -> LlamaForCausalLM parameter name, for every expected tensor."""
    mapping = {f"{src}.weight": f"{dst}.weight" for src, dst in TOP_LEVEL.items()}
    if weight_tying:
        del mapping["model.transformer.ff_out.weight"]
    for i in range(n_layers):
        for src, dst in BLOCK.items():
            mapping[f"model.transformer.blocks.{i}.{src}.weight"] = f"model.layers.{i}.{dst}.weight"
    return mapping


def _positive_int(config: dict[str, Any], key: str, path: Path) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise config_error(path, key, f"must be a positive integer, got {value!r}")
    return value


def llama_config(config: dict[str, Any], path: Path) -> Any:
    """transformers `LlamaConfig` equivalent to a LLaDA `config.json` (validated field by field)."""
    from transformers import LlamaConfig

    require_transformers()
    for key, accepted in REQUIRED_FLAGS.items():
        value = config.get(key, accepted)
        if value != accepted and not (value is None and accepted is False):
            raise config_error(path, key, f"{value!r} is not supported (tabom converts LLaDA with {key}={accepted!r})")
    if config.get("bias_for_layer_norm"):
        raise config_error(path, "bias_for_layer_norm", "layer-norm biases are not supported")
    d_model = _positive_int(config, "d_model", path)
    n_heads = _positive_int(config, "n_heads", path)
    n_layers = _positive_int(config, "n_layers", path)
    vocab = _positive_int(config, "vocab_size", path)
    if d_model % n_heads:
        raise config_error(path, "n_heads", f"{n_heads} must divide d_model {d_model}")
    n_kv = config.get("n_kv_heads")
    if n_kv is None:
        n_kv = 1 if config.get("multi_query_attention") else n_heads
    if not isinstance(n_kv, int) or n_kv <= 0 or n_heads % n_kv:
        raise config_error(path, "n_kv_heads", f"{n_kv!r} must be a positive divisor of n_heads {n_heads}")
    mlp = config.get("mlp_hidden_size")
    if mlp is None:
        mlp = int(config.get("mlp_ratio", 4)) * d_model
    if not isinstance(mlp, int) or mlp <= 0:
        raise config_error(path, "mlp_hidden_size", f"must be a positive integer, got {mlp!r}")
    embedding = config.get("embedding_size") or vocab
    if not isinstance(embedding, int) or embedding < vocab:
        raise config_error(path, "embedding_size", f"{embedding!r} must be an integer >= vocab_size {vocab}")
    llama = LlamaConfig(
        vocab_size=embedding,
        hidden_size=d_model,
        intermediate_size=mlp,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv,
        head_dim=d_model // n_heads,
        hidden_act="silu",
        max_position_embeddings=int(config.get("max_sequence_length", 4096)),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-5)),
        rope_parameters={"rope_type": "default", "rope_theta": float(config.get("rope_theta", 10000.0))},
        tie_word_embeddings=bool(config.get("weight_tying", False)),
        attention_bias=False,
        mlp_bias=False,
        use_cache=False,
        pad_token_id=config.get("pad_token_id"),
        bos_token_id=config.get("bos_token_id"),
        eos_token_id=config.get("eos_token_id"),
        attn_implementation="sdpa",
    )
    llama.is_causal = False
    return llama


def load_llada_tokenizer(directory: Path) -> Any:
    """LLaDA ships `tokenizer.json` with `tokenizer_class: PreTrainedTokenizerFast`: read it directly
    (AutoTokenizer would also parse config.json and warn about the unknown `llada` model type)."""
    from transformers import PreTrainedTokenizerFast

    cfg_path = directory / "tokenizer_config.json"
    tok_cfg = read_json(cfg_path) if cfg_path.exists() else {}
    if (directory / "tokenizer.json").exists() and tok_cfg.get("tokenizer_class") in (None, "PreTrainedTokenizerFast"):
        return PreTrainedTokenizerFast.from_pretrained(str(directory), local_files_only=True)
    return load_tokenizer(directory)


def load_llada(
    directory: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    device_map: str | dict | torch.device | None = None,
) -> DiffusionLM:
    """Load a LLaDA-layout folder (`model_type: "llada"`) as a bidirectional Llama `DiffusionLM`.

    Args:
        directory: holds config.json, safetensors weights (single or sharded) and tokenizer files.
        dtype: parameter dtype; each tensor is cast as it is read.
        device_map: None (CPU), a device ("cuda:0"), "auto"/"balanced"/"sequential", or {prefix: device}.
    """
    from transformers import LlamaForCausalLM

    directory = Path(directory)
    config_path, config = read_family_config(directory, "llada")
    llama = llama_config(config, config_path)
    mapping = weight_mapping(llama.num_hidden_layers, llama.tie_word_embeddings)
    backbone = build_and_load(LlamaForCausalLM, llama, directory, mapping, dtype=dtype, device_map=device_map)
    tokenizer = load_llada_tokenizer(directory)
    eos = config.get("eos_token_id", LLADA_EOS_ID)
    pad = config.get("pad_token_id")
    return DiffusionLM(
        backbone,
        tokenizer,
        mask_token_id=config.get("mask_token_id", LLADA_MASK_ID),
        eos_token_id=eos,
        pad_token_id=eos if pad is None else pad,
        logits_shift=False,
        family="llada",
        name=str(directory),
        chat_template=bool(getattr(tokenizer, "chat_template", None)),
    ).eval()
