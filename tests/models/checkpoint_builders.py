"""Tiny random checkpoints in the ORIGINAL on-disk layouts of Dream and LLaDA, built offline in seconds.

    d = build_dream_checkpoint(tmp_path / "dream", sharded=True)   # config.json, shards + index, tokenizer
    l = build_llada_checkpoint(tmp_path / "llada")                 # model.transformer.* tensor names
    a = build_dream_adapter(tmp_path / "lora", d)                   # a PEFT LoRA folder as the authors release it

Each folder carries what the released one carries (config keys, `architectures`, `auto_map`, the
tensor names, tokenizer files, a chat template) plus `modeling_*.py` files that raise on import, so a
test fails loudly if anything ever executes the folder's remote code. The tokenizers are real
byte-level BPEs trained with the `tokenizers` library on a few sentences (300 tokens) — a
small honest stand-in for the 150K-token originals, with the special tokens at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

CORPUS = ["the cat sat on the mat", "what is 2 + 3 ? the answer is 5", "hello world", "def f(x): return x"] * 4
DREAM_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>"]
LLADA_SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|mdm_mask|>"]
DREAM_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLADA_TEMPLATE = (
    "<|startoftext|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
POISON = "raise RuntimeError('tabom must never import remote code from a checkpoint folder')\n"


def _bpe():  # a byte-level BPE trained on CORPUS (deterministic)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


def _randn(gen: torch.Generator, *shape: int, std: float = 0.2) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * std


def _norm_weight(gen: torch.Generator, n: int) -> torch.Tensor:
    return 1.0 + _randn(gen, n, std=0.1)


def write_weights(directory: Path, tensors: dict[str, torch.Tensor], shards: int = 1) -> None:
    """`model.safetensors`, or `shards` files `model-0000i-of-0000n.safetensors` plus the index json."""
    from safetensors.torch import save_file

    names = sorted(tensors)
    if shards == 1:
        save_file({n: tensors[n].contiguous() for n in names}, str(directory / "model.safetensors"))
        return
    weight_map: dict[str, str] = {}
    for i in range(shards):
        part = names[i::shards]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: tensors[n].contiguous() for n in part}, str(directory / fname))
        weight_map.update({n: fname for n in part})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor stored in a fixture folder, by its stored name."""
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(directory.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def build_dream_checkpoint(
    directory: Path, *, sharded: bool = False, seed: int = 0, kv_heads: int = 2, layers: int = 2
) -> Path:
    """A Dream-v0-Instruct-7B-shaped folder at toy size (hidden 32, 4 heads, GQA with 2 kv heads)."""
    directory.mkdir(parents=True, exist_ok=True)
    tok = _bpe()
    tok.model.save(str(directory))  # vocab.json + merges.txt, as Dream ships them (no tokenizer.json)
    n = tok.get_vocab_size()
    ids = {s: n + i for i, s in enumerate(DREAM_SPECIALS)}
    added = {
        str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
        for s, i in ids.items()
    }
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
        "bos_token": "<|beginoftext|>", "chat_template": DREAM_TEMPLATE, "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>", "errors": "replace", "mask_token": "<|mask|>", "model_max_length": 512,
        "pad_token": "<|endoftext|>", "split_special_tokens": False, "tokenizer_class": "DreamTokenizer",
        "unk_token": None,
    }, indent=2))
    hidden, heads, inter, vocab = 32, 4, 48, 320
    config = {
        "architectures": ["DreamModel"],
        "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
        "bos_token_id": ids["<|beginoftext|>"], "eos_token_id": ids["<|endoftext|>"],
        "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": inter,
        "mask_token_id": ids["<|mask|>"], "max_position_embeddings": 512, "max_window_layers": layers,
        "model_type": "Dream", "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads, "pad_token_id": ids["<|endoftext|>"], "rms_norm_eps": 1e-06,
        "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.46.2", "use_cache": True,
        "use_sliding_window": False, "vocab_size": vocab,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "generation_config.json").write_text(json.dumps({
        "bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
        "pad_token_id": config["pad_token_id"], "mask_token_id": config["mask_token_id"],
    }))
    for py in ("modeling_dream.py", "configuration_dream.py", "generation_utils.py", "tokenization_dream.py"):
        (directory / py).write_text(POISON)
    gen = torch.Generator().manual_seed(seed)
    hd = hidden // heads
    t: dict[str, torch.Tensor] = {"model.embed_tokens.weight": _randn(gen, vocab, hidden, std=1.0)}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = _norm_weight(gen, hidden)
        t[p + "post_attention_layernorm.weight"] = _norm_weight(gen, hidden)
        for name, out in (("q_proj", heads * hd), ("k_proj", kv_heads * hd), ("v_proj", kv_heads * hd)):
            t[p + f"self_attn.{name}.weight"] = _randn(gen, out, hidden)
            t[p + f"self_attn.{name}.bias"] = _randn(gen, out)
        t[p + "self_attn.o_proj.weight"] = _randn(gen, hidden, heads * hd)
        t[p + "mlp.gate_proj.weight"] = _randn(gen, inter, hidden)
        t[p + "mlp.up_proj.weight"] = _randn(gen, inter, hidden)
        t[p + "mlp.down_proj.weight"] = _randn(gen, hidden, inter)
    t["model.norm.weight"] = _norm_weight(gen, hidden)
    t["lm_head.weight"] = _randn(gen, vocab, hidden)
    write_weights(directory, t, shards=3 if sharded else 1)
    return directory


def build_llada_checkpoint(
    directory: Path, *, sharded: bool = False, seed: int = 0, kv_heads: int = 2, weight_tying: bool = False
) -> Path:
    """A LLaDA-8B-Instruct-shaped folder at toy size, tensors under `model.transformer`."""
    directory.mkdir(parents=True, exist_ok=True)
    tok = _bpe()
    tok.add_special_tokens(LLADA_SPECIALS)
    tok.save(str(directory / "tokenizer.json"))
    ids = {s: tok.token_to_id(s) for s in LLADA_SPECIALS}
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "chat_template": LLADA_TEMPLATE,
        "clean_up_tokenization_spaces": False, "model_max_length": 512, "tokenizer_class": "PreTrainedTokenizerFast",
    }, indent=2))
    d_model, heads, mlp, layers, vocab, embedding = 32, 4, 48, 2, 310, 320
    config = {
        "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": d_model,
        "embedding_dropout": 0.0, "embedding_size": embedding, "eos_token_id": ids["<|endoftext|>"],
        "flash_attention": False, "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None,
        "init_device": "meta", "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False,
        "layer_norm_type": "rms", "layer_norm_with_affine": True, "mask_token_id": ids["<|mdm_mask|>"],
        "max_sequence_length": 512, "mlp_hidden_size": mlp, "mlp_ratio": 4, "model_type": "llada",
        "multi_query_attention": None, "n_heads": heads, "n_kv_heads": kv_heads, "n_layers": layers,
        "pad_token_id": ids["<|endoftext|>"], "precision": "amp_bf16", "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05, "rope": True, "rope_full_precision": True, "rope_theta": 500000.0,
        "scale_logits": False, "transformers_version": "4.46.3", "use_cache": False, "vocab_size": vocab,
        "weight_tying": weight_tying,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    for py in ("modeling_llada.py", "configuration_llada.py"):
        (directory / py).write_text(POISON)
    gen = torch.Generator().manual_seed(seed)
    hd = d_model // heads
    pre = "model.transformer."
    t: dict[str, torch.Tensor] = {pre + "wte.weight": _randn(gen, embedding, d_model, std=1.0)}
    for i in range(layers):
        p = f"{pre}blocks.{i}."
        t[p + "attn_norm.weight"] = _norm_weight(gen, d_model)
        t[p + "ff_norm.weight"] = _norm_weight(gen, d_model)
        t[p + "q_proj.weight"] = _randn(gen, d_model, d_model)
        t[p + "k_proj.weight"] = _randn(gen, kv_heads * hd, d_model)
        t[p + "v_proj.weight"] = _randn(gen, kv_heads * hd, d_model)
        t[p + "attn_out.weight"] = _randn(gen, d_model, d_model)
        t[p + "ff_proj.weight"] = _randn(gen, mlp, d_model)
        t[p + "up_proj.weight"] = _randn(gen, mlp, d_model)
        t[p + "ff_out.weight"] = _randn(gen, d_model, mlp)
    t[pre + "ln_f.weight"] = _norm_weight(gen, d_model)
    if not weight_tying:
        t[pre + "ff_out.weight"] = _randn(gen, embedding, d_model)
    write_weights(directory, t, shards=2 if sharded else 1)
    return directory


def build_lora_adapter(
    directory: Path,
    modules: dict[str, tuple[int, int]],
    *,
    base_model: str,
    r: int = 4,
    alpha: int = 8,
    seed: int = 1,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
) -> Path:
    """A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors), written by hand.

    Args:
        modules: module path in the ORIGINAL model tree -> (in_features, out_features); the keys
            become `base_model.model.<path>.lora_A.weight` (r, in) and `...lora_B.weight` (out, r),
            PEFT's saved naming. B is random (not PEFT's zero init) so the adapter changes logits.
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for path, (fan_in, fan_out) in modules.items():
        tensors[f"base_model.model.{path}.lora_A.weight"] = _randn(gen, r, fan_in, std=0.3)
        tensors[f"base_model.model.{path}.lora_B.weight"] = _randn(gen, fan_out, r, std=0.3)
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    config = {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": base_model, "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha,
        "lora_dropout": 0.05, "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
        "peft_type": "LORA", "r": r, "rank_pattern": {}, "revision": None, "target_modules": list(targets),
        "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False, "some_future_peft_field": 1,
    }
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return directory


def build_dream_adapter(directory: Path, checkpoint: Path, *, r: int = 4, alpha: int = 8, seed: int = 1) -> Path:
    """LoRA on every q_proj/v_proj of a Dream fixture, keyed as PEFT saves it on DreamModel."""
    cfg = json.loads((checkpoint / "config.json").read_text())
    h, hd = cfg["hidden_size"], cfg["hidden_size"] // cfg["num_attention_heads"]
    modules = {}
    for i in range(cfg["num_hidden_layers"]):
        modules[f"model.layers.{i}.self_attn.q_proj"] = (h, h)
        modules[f"model.layers.{i}.self_attn.v_proj"] = (h, cfg["num_key_value_heads"] * hd)
    return build_lora_adapter(directory, modules, base_model="Dream-org/Dream-v0-Instruct-7B", r=r, alpha=alpha, seed=seed)


def build_llada_adapter(directory: Path, checkpoint: Path, *, r: int = 4, alpha: int = 8, seed: int = 2) -> Path:
    """LoRA on q_proj/attn_out of a LLaDA fixture, keyed in LLaDA's own module tree."""
    cfg = json.loads((checkpoint / "config.json").read_text())
    d = cfg["d_model"]
    modules = {}
    for i in range(cfg["n_layers"]):
        modules[f"model.transformer.blocks.{i}.q_proj"] = (d, d)
        modules[f"model.transformer.blocks.{i}.attn_out"] = (d, d)
    return build_lora_adapter(
        directory, modules, base_model="GSAI-ML/LLaDA-8B-Instruct", r=r, alpha=alpha, seed=seed,
        targets=("q_proj", "attn_out"),
    )
