"""How much memory decoding needs beyond the weights, and the largest batch that fits.

    need = decode_bytes(DREAM_7B, batch=64, prompt=256, gen=256)          # bytes on top of the weights
    batch = auto_batch_size(DREAM_7B, prompt=300, gen=512, budget=free_bytes("cuda:0"))
    parse_memory("40GB")                                                   # 40e9

A decoding step's extra memory has two parts that grow with the batch:

- the per-step work on logits (confidence/entropy/margin, top-p/top-k, sampling, TDS entropies),
  ``LOGIT_BYTES`` per (row x masked position x vocabulary entry) when it ran over all positions at
  once, and a fixed buffer of at most ``chunk_positions x vocabulary`` elements since the engine
  runs it in chunks of positions (``bench/decode_memory.py`` measures both on the CPU);
- the forward's transient activations, estimated per token of the sequence (prompt + response)
  as ``(4 H + 3 I) x dtype bytes`` (a layer's hidden, query/key/value/output and MLP
  gate/up/down outputs live at once; layers run one after another) -- an estimate, not measured.

With ``record_entropy`` (TDS) the engine also keeps ``steps x gen`` float32 entropies per row.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

UNCHUNKED_LOGIT_BYTES = 16.0
"""Bytes per (row x masked position x vocabulary entry) of the whole-step logits work, measured by
bench/decode_memory.py (entropy rule, float32, real Dream vocabulary; 30 with top-p 0.9)."""
CHUNK_ELEMENTS = 1 << 24
"""The engine's chunk: at most this many (position x vocabulary) logits at once (16.8M, 67 MB in float32)."""
CHUNK_BUFFER_BYTES = 16.0 * CHUNK_ELEMENTS
"""The chunked work's own peak, independent of the batch (the whole-step work of one chunk; top-p
needs about twice this)."""


@dataclass(frozen=True)
class ModelShape:
    """What decoding memory depends on: vocabulary, hidden and MLP width, parameter count, dtype bytes."""

    name: str
    vocab: int
    hidden: int
    intermediate: int
    params: float
    dtype_bytes: int = 2

    @property
    def weight_bytes(self) -> float:
        """The weights in their dtype."""
        return self.params * self.dtype_bytes


DREAM_7B = ModelShape("Dream-v0-Instruct-7B", 152064, 3584, 18944, 7.62e9)
LLADA_8B = ModelShape("LLaDA-8B-Instruct", 126464, 4096, 12288, 8.02e9)


def shape_of(model: object) -> ModelShape:
    """The shape of a loaded DiffusionLM (its backbone's config), in its parameters' dtype."""
    import torch  # noqa: PLC0415

    backbone = getattr(model, "backbone", model)
    config = backbone.config  # type: ignore[attr-defined]
    params = sum(p.numel() for p in backbone.parameters())  # type: ignore[attr-defined]
    first = next(backbone.parameters())  # type: ignore[attr-defined]
    size = torch.finfo(first.dtype).bits // 8 if first.is_floating_point() else 4
    return ModelShape(str(getattr(model, "name", "model")), int(config.vocab_size), int(config.hidden_size),
                      int(config.intermediate_size), float(params), size)


def decode_bytes(shape: ModelShape, *, batch: int, prompt: int, gen: int, chunked: bool = True,
                 entropy_steps: int = 0) -> float:
    """Bytes beyond the weights for one decoding step of ``batch`` rows (prompt + gen tokens each)."""
    activations = batch * (prompt + gen) * (4 * shape.hidden + 3 * shape.intermediate) * shape.dtype_bytes
    logits = CHUNK_BUFFER_BYTES if chunked else UNCHUNKED_LOGIT_BYTES * batch * gen * shape.vocab
    return activations + logits + 4.0 * batch * entropy_steps * gen


def auto_batch_size(shape: ModelShape, *, prompt: int, gen: int, budget: float, limit: int = 4096,
                    entropy_steps: int = 0) -> int:
    """The largest batch (1..limit) whose :func:`decode_bytes` fits ``budget``; 1 when none does."""
    best = 1
    lo, hi = 1, max(1, limit)
    while lo <= hi:
        mid = (lo + hi) // 2
        if decode_bytes(shape, batch=mid, prompt=prompt, gen=gen, entropy_steps=entropy_steps) <= budget:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def parse_memory(text: str) -> float:
    """``"40GB"``, ``"512MiB"``, ``"2e9"`` -> bytes; a bad value is a ValueError naming it."""
    m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([kmgt]i?b?)?\s*", text.lower())
    if not m:
        raise ValueError(f"--max-memory: {text!r} is not a size (e.g. 40GB, 512MiB)")
    unit = (m.group(2) or "b").rstrip("b")
    factor = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}[unit]
    return float(m.group(1)) * factor


def free_bytes(device: str) -> float:
    """Free memory of ``device``: CUDA's free bytes, or the host's MemAvailable for the CPU."""
    if device.startswith("cuda"):
        import torch  # noqa: PLC0415

        return float(torch.cuda.mem_get_info(torch.device(device))[0])
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return float(line.split()[1]) * 1024
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def memory_table(shape: ModelShape, batches: tuple[int, ...], gens: tuple[int, ...], prompt: int = 256) -> str:
    """A markdown table: weights + decoding memory (GB) per batch and response length, chunked and not."""
    head = "| batch | " + " | ".join(f"gen {g}: chunked / whole step" for g in gens) + " |"
    lines = [head, "|---|" + "---|" * len(gens)]
    for b in batches:
        cells = []
        for g in gens:
            chunked = (shape.weight_bytes + decode_bytes(shape, batch=b, prompt=prompt, gen=g)) / 1e9
            whole = (shape.weight_bytes + decode_bytes(shape, batch=b, prompt=prompt, gen=g, chunked=False)) / 1e9
            cells.append(f"{chunked:.1f} / {whole:.1f}")
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_batch_size(text: str, max_memory: str | None) -> int | None:
    """``--batch-size`` as given: a positive integer, or None for ``auto``; ``--max-memory`` only with auto."""
    if text.strip().lower() == "auto":
        if max_memory is not None:
            parse_memory(max_memory)
        return None
    if max_memory is not None:
        raise ValueError("--max-memory: only with --batch-size auto")
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"--batch-size: expected a positive integer or 'auto', got {text!r}")
    return int(text)


def auto_batch_for(model: object, prompt_lengths: list[int], gen: int, max_memory: str | None,
                   entropy_steps: int = 0) -> tuple[int, float]:
    """(batch, budget bytes) for ``model``: the budget is ``max_memory``, else 90% of its device's free memory."""
    device = str(getattr(model, "device", "cpu"))
    budget = parse_memory(max_memory) if max_memory is not None else 0.9 * free_bytes(device)
    prompt = max(prompt_lengths, default=0)
    batch = auto_batch_size(shape_of(model), prompt=prompt, gen=gen, budget=budget,
                            limit=max(1, len(prompt_lengths)), entropy_steps=entropy_steps)
    return batch, budget
