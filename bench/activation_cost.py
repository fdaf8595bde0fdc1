"""Measure the activation cost per token per decoder layer behind `tabom.training.memory`.

    python bench/activation_cost.py        # about 20 s on one CPU core

Builds bf16 tiny Llamas of 2 and 4 layers at a few widths, runs the bidirectional forward under
autograd's saved-tensor hooks (`memory.saved_bytes`), and prints bytes saved per token per layer
(the 4-layer minus the 2-layer model, halved), with every weight trainable, with LoRA r 16 on
q_proj/v_proj, and with gradient checkpointing; then the fit a*H + b*I + c at L = 32 after taking
off the 2*L term seen between L = 32 and L = 64. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import torch

from tabom.models.adapters import attach_lora
from tabom.models.tiny import build_tiny
from tabom.training.memory import saved_bytes


def per_layer(hidden: int, inter: int, seq: int, lora: bool = False, ckpt: bool = False, rows: int = 2) -> float:
    """Bytes saved per token per decoder layer at this shape."""
    total = []
    for layers in (2, 4):
        model = build_tiny(seed=0, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                           num_key_value_heads=4, intermediate_size=inter, max_position_embeddings=512)
        model = model.to(torch.bfloat16).train()
        if ckpt:
            model.backbone.activation_checkpointing_enable({"use_reentrant": False})
        if lora:
            model = attach_lora(model, r=16, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"])
        else:
            for param in model.parameters():
                param.requires_grad_(True)
        ids = torch.randint(4, 90, (rows, seq))
        attn = torch.ones(rows, seq, dtype=torch.bool)
        attn[0, :3] = False  # left padding, as batches have: the 4D attention mask is kept
        total.append(saved_bytes(model, lambda: model.hidden(ids, attn)))
    return (total[1] - total[0]) / 2 / (rows * seq)


def main() -> None:
    """Print the table and the fitted coefficients."""
    shapes = [(128, 256), (128, 512), (256, 512)]
    for lora in (False, True):
        rows = {}
        for hidden, inter in shapes:
            short, long = per_layer(hidden, inter, 32, lora), per_layer(hidden, inter, 64, lora)
            rows[(hidden, inter)] = short - 2 * 32
            print(f"lora={lora} H={hidden} I={inter}: {short:.0f} B/token/layer at L=32, {long:.0f} at L=64")
        b = (rows[(128, 512)] - rows[(128, 256)]) / 256
        a = (rows[(256, 512)] - rows[(128, 512)]) / 128
        c = rows[(128, 256)] - a * 128 - b * 256
        print(f"lora={lora}: a={a:.1f} b={b:.1f} c={c:.1f}")
    for hidden, inter in shapes[::2]:
        print(f"checkpointing H={hidden} I={inter}: {per_layer(hidden, inter, 64, ckpt=True):.0f} B/token/layer")


if __name__ == "__main__":
    main()
