"""GPU memory per process of a training run, computed (not measured) from parameter counts and
activation costs per token measured once at a small shape.

    shape = ModelShape.dream_7b()
    est = estimate(shape, lora=False, mode="fsdp", world=8, checkpointing=True,
                   rows=4, seq_len=512, supervised=256)
    est.total_gb                       # what one GPU holds at the peak, in GB (1e9 bytes)

What is counted (bf16 compute, AdamW):

- weights: LoRA under DDP keeps the frozen weights in their loading dtype (bf16, 2 bytes) plus
  the fp32 adapters; full fine-tuning under DDP keeps fp32 master weights (4 bytes) plus the
  bf16 copies autocast makes (2 bytes); under FSDP every weight is fp32 and 1/N per process,
  plus two decoder layers gathered in bf16 (the one computing and the one prefetched).
- gradients: fp32 of the trainable weights; DDP also holds its gradient buckets (a second copy);
  FSDP holds 1/N, plus one gathered layer's fp32 gradients before the reduce-scatter.
- optimizer: AdamW's two fp32 moments (8 bytes per trainable weight), 1/N under FSDP.
- activations: what autograd saves for the backward, per token per decoder layer
  `a*H + b*I + c + 2*L` bytes (H hidden size, I MLP size, L sequence length), and
  `HEAD_BYTES` per supervised position and vocabulary entry for the LM head and the loss. With
  gradient checkpointing a layer keeps only its bf16 input (2H bytes per token) and one layer's
  activations exist at a time during the recompute.

The coefficients were measured with `bench/activation_cost.py` (autograd's saved-tensor hooks on
a bf16 tiny Llama of 2 and 4 layers at H in {128, 256}, I in {256, 512}, L in {32, 64}; CPU
SDPA). Not counted: the CUDA context and allocator fragmentation (add 1-3 GB), NCCL buffers,
and temporaries inside one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACT_FULL = (24, 8, 24)
"""Bytes saved per token per decoder layer when every weight trains: a*H + b*I + c (+ 2*L)."""
ACT_LORA = (24, 6, 152)
"""The same with LoRA r 16 on q_proj and v_proj (frozen linears keep no input for their weights)."""
ACT_PER_POSITION = 2
"""Extra bytes per token per layer for each token of the sequence (the L term: the attention mask)."""
CKPT_BYTES_PER_H = 2
"""Gradient checkpointing: bytes per token per layer per hidden unit kept (the layer's bf16 input)."""
HEAD_BYTES = 7
"""LM head and loss: bytes per supervised position per vocabulary entry (bf16 logits, fp32
log-softmax)."""
GB = 1e9


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a model: sizes, and the parameter counts they give."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    qkv_bias: bool = False
    tied: bool = False
    lora_r: int = 16

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden // self.heads

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer (attention, SwiGLU MLP, two norms)."""
        h, kv = self.hidden, self.kv_heads * self.head_dim
        attn = 2 * h * h + 2 * h * kv + ((h + 2 * kv) if self.qkv_bias else 0)
        return attn + 3 * h * self.intermediate + 2 * h

    @property
    def params(self) -> int:
        """All parameters: layers, embeddings, LM head (unless tied), final norm."""
        embed = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * self.layer_params + embed + self.hidden

    @property
    def lora_params(self) -> int:
        """LoRA parameters at rank `lora_r` on q_proj and v_proj of every layer."""
        kv = self.kv_heads * self.head_dim
        return self.layers * self.lora_r * ((self.hidden + self.hidden) + (self.hidden + kv))

    @staticmethod
    def dream_7b() -> "ModelShape":
        """Dream-v0-Instruct-7B (the Qwen2.5-7B shape): 7.62B parameters."""
        return ModelShape(layers=28, hidden=3584, intermediate=18944, vocab=152064, heads=28, kv_heads=4,
                          qkv_bias=True)

    @staticmethod
    def llada_8b() -> "ModelShape":
        """LLaDA-8B-Instruct: 8.02B parameters."""
        return ModelShape(layers=32, hidden=4096, intermediate=12288, vocab=126464, heads=32, kv_heads=32)


@dataclass(frozen=True)
class Estimate:
    """Bytes per process, by kind."""

    weights: float
    gradients: float
    optimizer: float
    activations: float

    @property
    def total_gb(self) -> float:
        """The sum, in GB (1e9 bytes)."""
        return (self.weights + self.gradients + self.optimizer + self.activations) / GB


def activation_bytes(shape: ModelShape, lora: bool, checkpointing: bool, rows: int, seq_len: int,
                     supervised: int) -> float:
    """Bytes autograd saves for one micro-batch of `rows` x `seq_len` tokens (`supervised` scored
    positions per row)."""
    a, b, c = ACT_LORA if lora else ACT_FULL
    per_layer = a * shape.hidden + b * shape.intermediate + c + ACT_PER_POSITION * seq_len  # per token
    tokens = rows * seq_len
    if checkpointing:
        body = shape.layers * tokens * CKPT_BYTES_PER_H * shape.hidden + tokens * per_layer
    else:
        body = shape.layers * tokens * per_layer
    return body + rows * supervised * shape.vocab * HEAD_BYTES


def estimate(shape: ModelShape, *, lora: bool, mode: str, world: int, checkpointing: bool, rows: int,
             seq_len: int, supervised: int, params: int | None = None,
             trainable: int | None = None) -> Estimate:
    """Per-process memory of a run (see the module doc for what each term holds).

    `params`/`trainable` override the counts the shape gives (the trainer passes the model's).
    """
    total = shape.params if params is None else params
    train = (shape.lora_params if lora else total) if trainable is None else trainable
    sharded = mode == "fsdp" and world > 1
    gathered = 2 * 2 * shape.layer_params  # two layers in bf16 while sharded
    if sharded:
        weights = 4 * total / world + gathered
        grads = 4 * train / world + (4 * shape.layer_params if not lora else 0)
        optim = 8 * train / world
    else:
        weights = 2 * total + 4 * train if lora else 4 * total + 2 * total
        grads = 4 * train * (2 if world > 1 else 1)
        optim = 8 * train
    acts = activation_bytes(shape, lora, checkpointing, rows, seq_len, supervised)
    return Estimate(weights, grads, optim, acts)


def shape_of(model: Any) -> ModelShape:
    """The ModelShape of a loaded DiffusionLM (its transformers config)."""
    cfg = model.config
    heads = int(cfg.num_attention_heads)
    return ModelShape(layers=int(cfg.num_hidden_layers), hidden=int(cfg.hidden_size),
                      intermediate=int(cfg.intermediate_size), vocab=int(model.vocab_size), heads=heads,
                      kv_heads=int(getattr(cfg, "num_key_value_heads", None) or heads))


def run_note(model: Any, *, lora: bool, mode: str, world: int, checkpointing: bool, rows: int,
             seq_len: int, supervised: int) -> str:
    """The line the trainer prints before its first step: the computed per-process memory."""
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    est = estimate(shape_of(model), lora=lora, mode=mode, world=world, checkpointing=checkpointing,
                   rows=rows, seq_len=seq_len, supervised=supervised, params=params, trainable=trainable)
    total = est.weights + est.gradients + est.optimizer + est.activations
    return (f"memory per process (computed, bf16 compute; tabom.training.memory): weights "
            f"{_size(est.weights)}, gradients {_size(est.gradients)}, optimizer {_size(est.optimizer)}, "
            f"activations {_size(est.activations)} at {rows} x {seq_len} tokens = {_size(total)} "
            f"({mode}, {world} process(es), checkpointing {'on' if checkpointing else 'off'})")


def _size(nbytes: float) -> str:
    return f"{nbytes / GB:.2f} GB" if nbytes >= 0.1 * GB else f"{nbytes / 1e6:.1f} MB"


def saved_bytes(model: Any, run: Any) -> int:
    """Bytes of the tensors autograd saves while `run()` executes, parameters excluded (each
    storage counted once): the measurement behind the coefficients above."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def table_7b(world: int = 8, rows: int = 4, seq_len: int = 512, supervised: int = 256) -> str:
    """The markdown table of docs/training.md: both 7B shapes, LoRA and full, DDP and FSDP, with
    and without checkpointing (GB per GPU)."""
    lines = ["| model | training | parallel | checkpointing | weights | gradients | AdamW | activations "
             "| total per GPU |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for name, shape in (("Dream 7B", ModelShape.dream_7b()), ("LLaDA 8B", ModelShape.llada_8b())):
        for lora in (True, False):
            for mode in ("ddp", "fsdp"):
                for ckpt in (False, True):
                    est = estimate(shape, lora=lora, mode=mode, world=world, checkpointing=ckpt, rows=rows,
                                   seq_len=seq_len, supervised=supervised)
                    cells = [f"{v / GB:.2f}" if v < GB else f"{v / GB:.1f}"
                             for v in (est.weights, est.gradients, est.optimizer, est.activations)]
                    lines.append(f"| {name} | {'LoRA r 16 q,v' if lora else 'full'} | {mode.upper()} x {world} | "
                                 f"{'on' if ckpt else 'off'} | {' | '.join(cells)} | **{est.total_gb:.1f}** |")
    return "\n".join(lines)
