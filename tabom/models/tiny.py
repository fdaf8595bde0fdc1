"""The built-in tiny DLM: a bidirectional Llama of a few million parameters over characters.

`build_tiny()` makes a randomly initialised one (what `tabom pretrain` starts from and what tests
use); the trained checkpoint ships in `tabom/assets/tiny/` and loads as `tabom.models.load("tiny")`.

    model = build_tiny(seed=0, hidden_size=32, num_hidden_layers=2)   # a test-sized model
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from tabom.models.char_tokenizer import CharTokenizer
from tabom.models.compat import require_transformers
from tabom.models.diffusion_lm import DiffusionLM


@dataclass
class TinyConfig:
    """Shape of the tiny Llama. The shipped checkpoint uses these defaults (about 1.8M parameters)."""

    hidden_size: int = 192
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")


def build_tiny(seed: int = 0, **overrides: int | float) -> DiffusionLM:
    """A randomly initialised tiny DLM (float32, CPU) with the character tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    require_transformers()
    shape = TinyConfig(**overrides)  # type: ignore[arg-type]
    tok = CharTokenizer()
    config = LlamaConfig(
        vocab_size=tok.vocab_size,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        attn_implementation="sdpa",
        **asdict(shape),
    )
    config.is_causal = False
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        backbone = LlamaForCausalLM(config)
    return DiffusionLM(
        backbone,
        tok,
        mask_token_id=tok.mask_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        logits_shift=False,
        family="tiny",
        name="tiny",
    )
