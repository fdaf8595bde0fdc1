"""Benchmark: the TABOM loss head vs the release's formulation (time and peak memory).

Both variants take the same random hidden states (B, T_resp, H), a frozen LM head (V, H), one
trajectory (one token per decode step), the same cut per row and the same windows
(CE window M = ranking window W), and run forward + backward to the hidden states.

- ``tabom``: gathers the hidden states at the ranked/supervised positions only, runs the head
  there in chunks (:func:`chunked_head_ce_entropy`; ``--recompute`` adds activation
  checkpointing so only one chunk's logits live at a time), then the vectorised CE + entropy
  ranking (:func:`tabom_terms`).
- ``release``: the release's formulation: full-vocabulary float32 logits at every response
  position, CE from them, ``softmax`` then ``log(p + 1e-10)`` for the entropy, and a Python
  loop over rows with boolean indexing, ``argsort`` and an upper-triangular pair mask.

Each variant runs in a fresh subprocess so its peak memory is its own: peak RSS on CPU,
``torch.cuda.max_memory_allocated`` on CUDA. "head" memory is the peak minus the memory held
after building the inputs (hidden states and head weight, the same for both); on CPU the peak
counter (VmHWM) is reset through ``/proc/self/clear_refs`` before the measured run.

    python bench/loss_head.py --small                 # quick check (seconds)
    python bench/loss_head.py                         # B=8, T=256, H=3584, V=152064
    python bench/loss_head.py --device cuda          # 2 warm-up runs, fastest of 5

On CUDA the first call with a new shape also loads kernels and lets cuBLAS choose an algorithm;
measured cold (as on 2026-11-30 before this default), the bf16 tabom head looked slower than the
release's (0.8x); warm, it is 4.6x faster (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tabom.objectives.head import chunked_head_ce_entropy  # noqa: E402
from tabom.objectives.tabom import TabomConfig, tabom_terms  # noqa: E402
from tabom.objectives.types import NoisedBatch  # noqa: E402


def build_inputs(args: argparse.Namespace) -> dict[str, Tensor]:
    """Seeded random hidden states, head weight, targets, decode steps and cuts."""
    device = torch.device(args.device)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    g = torch.Generator(device="cpu").manual_seed(0)
    B, T, H, V, W = args.batch, args.resp_len, args.hidden, args.vocab, args.window
    hidden = torch.randn(B, T, H, generator=g).to(device=device, dtype=dtype)  # (B, T, H)
    weight = torch.empty(V, H, dtype=dtype, device=device)  # (V, H)
    for start in range(0, V, 8192):  # fill in slices: no full-size float32 temporary
        stop = min(V, start + 8192)
        weight[start:stop] = (torch.randn(stop - start, H, generator=g) * 0.02).to(device, dtype)
    targets = torch.randint(0, V, (B, T), generator=g).to(device)  # (B, T)
    steps = torch.stack([torch.randperm(T, generator=g) for _ in range(B)]).to(device)  # (B, T)
    cut = torch.randint(0, T - W + 1, (B,), generator=g).to(device)  # (B,)
    return {"hidden": hidden, "weight": weight, "targets": targets, "steps": steps, "cut": cut}


def tabom_head(inp: dict[str, Tensor], args: argparse.Namespace) -> Tensor:
    """Logits only at the W window positions per row, chunked + recomputed in backward."""
    hidden, steps, cut = inp["hidden"], inp["steps"], inp["cut"]
    B, T = steps.shape
    masked = steps >= cut.unsqueeze(1)  # (B, T) state: steps >= cut are masked
    window = masked & (steps < cut.unsqueeze(1) + args.window)  # (B, T)
    index = torch.nonzero(window.reshape(-1)).squeeze(1)  # (N,) row-major
    h = hidden.reshape(B * T, -1).index_select(0, index)  # (N, H)
    ce, ent = chunked_head_ce_entropy(h, inp["weight"], inp["targets"].reshape(-1)[index], args.chunk,
                                      recompute=args.recompute)
    cfg = TabomConfig(ce_window=args.window, rank_window=args.window, margin=args.margin,
                      rank_lambda=args.lam)
    ones = torch.ones(B, dtype=torch.float32, device=steps.device)
    noised = NoisedBatch(
        input_ids=inp["targets"], attention_mask=torch.ones_like(window), positions=window,
        targets=inp["targets"], response_mask=torch.ones_like(window), steps=steps,
        ce_mask=window, cut=cut, p_mask=ones, row_valid=ones.bool(), rank_mask=window,
    )
    loss_ce, loss_rank = tabom_terms(ce, ent, noised, cfg)
    return loss_ce + args.lam * loss_rank


def release_head(inp: dict[str, Tensor], args: argparse.Namespace) -> Tensor:
    """The release's formulation: full (B, T, V) float32 logits and a per-row Python loop."""
    hidden, steps, cut = inp["hidden"], inp["steps"], inp["cut"]
    B, T = steps.shape
    resp_logits = (hidden @ inp["weight"].t()).float()  # (B, T, V)
    ce_mask = (steps >= cut.unsqueeze(1)) & (steps < cut.unsqueeze(1) + args.window)  # (B, T)
    tok_ce = F.cross_entropy(resp_logits.reshape(B * T, -1), inp["targets"].reshape(-1),
                             reduction="none").reshape(B, T)  # (B, T)
    loss_vec = (tok_ce * ce_mask).sum(1) / ce_mask.sum(1)  # (B,)
    probs_full = torch.softmax(resp_logits, dim=-1)  # (B, T, V)
    log_probs_full = torch.log(probs_full + 1e-10)  # (B, T, V)
    neg_entropy_full = torch.sum(probs_full * log_probs_full, dim=-1)  # (B, T)
    rank_terms = []
    for b in range(B):
        steps_b = steps[b]
        valid = (steps_b >= 0) & (steps_b >= cut[b])  # masked positions of the state
        if valid.sum().item() < 2:
            continue
        steps_valid = steps_b[valid].float()
        neg_e_valid = neg_entropy_full[b][valid]
        s = float(cut[b])
        in_win = (steps_valid >= s) & (steps_valid < s + args.window)
        win_idx = torch.where(in_win)[0]
        if win_idx.numel() < 2:
            continue
        order = torch.argsort(steps_valid[win_idx])
        neg_e = neg_e_valid[win_idx][order]
        n = int(order.numel())
        diff = neg_e.unsqueeze(0) - neg_e.unsqueeze(1)  # [i, j] = neg_e_j - neg_e_i
        triu = torch.triu(torch.ones(n, n, dtype=torch.bool, device=diff.device), diagonal=1)
        rank_terms.append(F.relu(diff + args.margin)[triu].mean())
    loss_rank = torch.stack(rank_terms).mean() if rank_terms else resp_logits.new_zeros(())
    return loss_vec.mean() + args.lam * loss_rank


def _read_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak(device: str) -> int:
    """Reset the peak counter and return the memory held now (bytes).

    CUDA: allocator statistics. CPU: writing 5 to /proc/self/clear_refs resets VmHWM (Linux);
    where that is unavailable the peak is ``ru_maxrss`` (so run without ``--warmup``).
    """
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        rss = _read_status_kib("VmRSS")
        if rss is not None:
            return rss * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak(device: str) -> int:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    hwm = _read_status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_variant(variant: str, args: argparse.Namespace) -> dict[str, float]:
    """Build inputs, run forward + backward once (after warm-up runs), measure.

    A tiny warm-up (same code path, toy sizes) always runs first so lazy imports and kernel
    initialisation are not counted; ``--warmup`` adds full-size warm-up runs.
    """
    torch.set_num_threads(args.threads)
    fn = {"tabom": tabom_head, "release": release_head}[variant]
    toy = argparse.Namespace(**{**vars(args), "batch": 2, "resp_len": 16, "hidden": 8,
                                "vocab": 32, "window": 4})
    toy_inp = build_inputs(toy)
    fn({**toy_inp, "hidden": toy_inp["hidden"].requires_grad_(True)}, toy).backward()
    del toy_inp
    inp = build_inputs(args)
    for _ in range(args.warmup):
        h = inp["hidden"].detach().requires_grad_(True)
        fn({**inp, "hidden": h}, args).backward()
    _sync(args.device)
    base = _reset_peak(args.device)
    times = []
    for _ in range(args.repeat):
        h = inp["hidden"].detach().requires_grad_(True)
        _sync(args.device)
        t0 = time.perf_counter()
        loss = fn({**inp, "hidden": h}, args)
        loss.backward()
        _sync(args.device)
        times.append(time.perf_counter() - t0)
    peak = _peak(args.device)
    return {"loss": float(loss), "grad_norm": float(h.grad.float().norm()), "time_s": min(times),
            "peak_bytes": peak, "head_bytes": peak - base}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--resp-len", type=int, default=256)
    p.add_argument("--hidden", type=int, default=3584)
    p.add_argument("--vocab", type=int, default=152064)
    p.add_argument("--window", type=int, default=32, help="M = W")
    p.add_argument("--margin", type=float, default=0.2)
    p.add_argument("--lam", type=float, default=1.0)
    p.add_argument("--chunk", type=int, default=64, help="rows per head chunk (tabom)")
    p.add_argument("--recompute", action="store_true",
                   help="tabom: recompute each chunk's logits in backward (least memory, slower)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=None,
                   help="full-size warm-up runs (default: 2 on CUDA, 0 on the CPU)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed runs, the fastest reported (default: 5 on CUDA, 1 on the CPU)")
    p.add_argument("--small", action="store_true", help="B=2, T=64, H=64, V=2048, W=16")
    p.add_argument("--worker", choices=["tabom", "release"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    on_cuda = args.device.startswith("cuda")  # a first CUDA call also picks kernels: not the loss's cost
    args.warmup = (2 if on_cuda else 0) if args.warmup is None else args.warmup
    args.repeat = (5 if on_cuda else 1) if args.repeat is None else args.repeat
    if args.small:
        args.batch, args.resp_len, args.hidden, args.vocab, args.window = 2, 64, 64, 2048, 16
    if args.worker:
        print(json.dumps(run_variant(args.worker, args)))
        return {}
    results: dict[str, dict[str, float]] = {}
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    for variant in ("release", "tabom"):
        out = subprocess.run([sys.executable, __file__, *passthrough, "--worker", variant],
                             check=True, capture_output=True, text=True)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    rel, tab = results["release"], results["tabom"]
    rel_diff = abs(rel["loss"] - tab["loss"]) / max(abs(rel["loss"]), 1e-12)
    grad_diff = abs(rel["grad_norm"] - tab["grad_norm"]) / max(rel["grad_norm"], 1e-12)
    mib = 2**20
    print(f"B={args.batch} T_resp={args.resp_len} H={args.hidden} V={args.vocab} W=M={args.window} "
          f"device={args.device} dtype={args.dtype} threads={args.threads} chunk={args.chunk} "
          f"warmup={args.warmup} repeat={args.repeat}")
    print(f"{'variant':<8} {'loss':>12} {'time_s':>8} {'peak_MiB':>10} {'head_MiB':>10}")
    for name, r in results.items():
        print(f"{name:<8} {r['loss']:>12.6f} {r['time_s']:>8.3f} {r['peak_bytes'] / mib:>10.1f} "
              f"{r['head_bytes'] / mib:>10.1f}")
    speed = rel["time_s"] / tab["time_s"]
    mem = rel["head_bytes"] / max(tab["head_bytes"], 1)
    print(f"loss rel diff {rel_diff:.2e}  grad-norm rel diff {grad_diff:.2e}  "
          f"speed-up {speed:.1f}x  head-memory ratio {mem:.1f}x  "
          f"peak ratio {rel['peak_bytes'] / max(tab['peak_bytes'], 1):.2f}x")
    assert rel_diff <= 1e-4, f"loss mismatch: release {rel['loss']} vs tabom {tab['loss']}"
    results["summary"] = {"loss_rel_diff": rel_diff, "grad_rel_diff": grad_diff,
                          "speedup": speed, "head_memory_ratio": mem}
    return results


if __name__ == "__main__":
    main()
