"""Temporary memory of a decoding step per (row x masked position x vocabulary entry), on the CPU.

    python bench/decode_memory.py                    # entropy, entropy + top-p (Dream preset), confidence
    python bench/decode_memory.py --gen 64 --batches 2 6

Builds a random Dream-layout checkpoint at the REAL vocabulary (152,064 embedding rows, Dream's
own tokenizer files from ../shared/reference/dream_tokenizer/; 1 layer, hidden 64, so the weights
are ~80 MB and the step's logits work dominates), then decodes the same prompt in a batch of B rows
with ``gen`` masked positions. Each (strategy, B) runs in a fresh process that loads the model,
warms up, resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), decodes, and reads the
peak (``VmHWM``). The per-element figure is the slope between two batch sizes:
``(peak(B1) - peak(B0)) / ((B1 - B0) x gen x V)`` bytes: what each extra row costs per masked
position and vocabulary entry. The run also checks that the tokens and decode orders equal those of
the unchunked step (``TABOM_LOGITS_CHUNK=0``), and prints both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "dream_tokenizer"
VOCAB = 152064  # Dream-v0-Instruct-7B's embedding rows (151,643 BPE entries + specials + padding)


def build(directory: Path) -> Path:
    """A random 1-layer Dream-layout folder with the real tokenizer and the real vocabulary size."""
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    for f in REFERENCE.iterdir():
        shutil.copy(f, directory / f.name)
    hidden, heads, kv, inter, layers = 64, 4, 2, 128, 1
    config = {
        "architectures": ["DreamModel"], "model_type": "Dream", "hidden_act": "silu", "hidden_size": hidden,
        "intermediate_size": inter, "num_attention_heads": heads, "num_key_value_heads": kv,
        "num_hidden_layers": layers, "max_window_layers": layers, "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": None, "sliding_window": None,
        "use_sliding_window": False, "tie_word_embeddings": False, "torch_dtype": "float32",
        "vocab_size": VOCAB, "bos_token_id": 151643, "eos_token_id": 151643, "pad_token_id": 151643,
        "mask_token_id": 151666, "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": False,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int, std: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    hd = hidden // heads
    t = {"model.embed_tokens.weight": randn(VOCAB, hidden, std=1.0), "model.norm.weight": 1 + randn(hidden),
         "lm_head.weight": randn(VOCAB, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + randn(hidden)
        t[p + "post_attention_layernorm.weight"] = 1 + randn(hidden)
        for name, out in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
            t[p + f"self_attn.{name}.weight"] = randn(out, hidden)
            t[p + f"self_attn.{name}.bias"] = randn(out)
        t[p + "self_attn.o_proj.weight"] = randn(hidden, heads * hd)
        t[p + "mlp.gate_proj.weight"] = randn(inter, hidden)
        t[p + "mlp.up_proj.weight"] = randn(inter, hidden)
        t[p + "mlp.down_proj.weight"] = randn(hidden, inter)
    save_file(t, str(directory / "model.safetensors"))
    return directory


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(folder: str, batch: int, gen: int, strategy: str, top_p: float | None) -> None:
    """Load, warm up, reset the peak, decode ``batch`` rows; print peak growth, tokens and orders as JSON."""
    import torch

    from tabom.decoding import generate
    from tabom.models import load

    torch.set_num_threads(1)
    lm = load(folder, device="cpu", dtype="float32")
    prompt = lm.encode_prompt("Natalia sold clips to 48 of her friends in April. How many clips?")
    kwargs = {"gen_length": gen, "steps": 4, "strategy": strategy, "temperature": 0.1 if top_p else 0.0,
              "top_p": top_p, "batch_size": batch}
    generate(lm, [prompt], **{**kwargs, "gen_length": 8, "steps": 2})  # warm-up: lazy inits off the peak
    base = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    gen_ = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        out = generate(lm, [prompt] * batch, generator=gen_, **kwargs)
    print(json.dumps({"peak_growth_kib": _peak_kib() - base, "tokens": out.tokens.tolist(),
                      "order": out.decoding_order.tolist()}))


def measure(folder: Path, batch: int, gen: int, strategy: str, top_p: float | None, chunk: str | None) -> dict:
    """One child process; ``chunk`` sets TABOM_LOGITS_CHUNK (None: the engine's default)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if chunk is not None:
        env["TABOM_LOGITS_CHUNK"] = chunk
    cmd = [sys.executable, __file__, "--child", str(folder), str(batch), str(gen), strategy, str(top_p or 0)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print per-element figures for each strategy, default engine against the unchunked step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gen", type=int, default=64, help="masked positions at the first step")
    parser.add_argument("--batches", type=int, nargs=2, default=[2, 6],
                        help="two batch sizes B0 B1 (both above one chunk: B0 x gen > 2^24 / V = 110 positions)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, batch, gen, strategy, top_p = args.child
        child(folder, int(batch), int(gen), strategy, float(top_p) or None)
        return
    b0, b1 = args.batches
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "dream_random")
        print(f"random Dream-layout model, vocabulary {VOCAB}, gen {args.gen} masked positions, batches {b0} -> {b1}")
        print(f"{'strategy':<26}{'engine':<12}{'peak B0 MB':>12}{'peak B1 MB':>12}{'bytes/element':>15}  same tokens+orders")
        for strategy, top_p in (("entropy", None), ("entropy", 0.9), ("confidence", None)):
            label = strategy + (" + top-p 0.9, T 0.1" if top_p else "")
            ref = None
            for engine, chunk in (("unchunked", "0"), ("default", None)):
                r0 = measure(folder, b0, args.gen, strategy, top_p, chunk)
                r1 = measure(folder, b1, args.gen, strategy, top_p, chunk)
                per = (r1["peak_growth_kib"] - r0["peak_growth_kib"]) * 1024 / ((b1 - b0) * args.gen * VOCAB)
                same = "" if ref is None else str(ref == (r1["tokens"], r1["order"]))
                ref = ref or (r1["tokens"], r1["order"])
                print(f"{label:<26}{engine:<12}{r0['peak_growth_kib'] / 1024:>12.1f}{r1['peak_growth_kib'] / 1024:>12.1f}"
                      f"{per:>15.2f}  {same}")


if __name__ == "__main__":
    main()
