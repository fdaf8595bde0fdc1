"""How much of a masked answer the tiny model fills in: a quick diagnostic of pre-training progress.

    python -m tabom.pretraining.probe tabom/assets/tiny runs/pretrain/step_1000     # one line per checkpoint

For `n` validation problems of every family (native answers, EOS-padded to `gen_length`), each
response character is masked with probability t, the masked sequence goes through the model once,
and the argmax at every masked position is compared with the truth, separately for answer
characters ("content") and EOS padding. At t = 0.1 this measures local competence (copying,
format, single digits); at t = 1.0 the answer is predicted from the prompt alone in one shot.
Full-answer accuracy needs nearly every character right, so it stays near zero until content
accuracy is high: watch this number while a pre-training run goes. Validation split only.

It also prints the mean attention entropy of every layer (nats, over the heads and the
non-padding query positions, response fully masked). Near 0 means each head puts all its weight
on a single key: attention entropy collapse, which stalled the first tiny pre-training runs at a
peak learning rate of 3e-3 (docs/tiny_model.md). Healthy heads sit well above 1 nat early in
training.

With `--drill` it also answers 200 distinct bare facts per family ("6+5=" -> "11", taken from
the training answers): does the model know the facts at all, with nothing to copy?

And it prints how often the model *computes* an arithmetic result rather than copying it: for
every "a OP b=c" (or "a<b True") in the native answers of val `math_chain`, `math_linear` and
`code_trace` problems, the result's characters and every later digit are masked (so the result
cannot be copied from its twins: the next line's operand, the `####` line), the rest of the
answer stays visible, and the result counts as right when every masked result character's argmax
is. A model can fill 80% of masked characters and still compute 10% of results (docs/tiny_model.md).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from tabom.models.diffusion_lm import DiffusionLM


@dataclass(frozen=True)
class FillAccuracy:
    """Argmax accuracy on masked positions at one mask rate."""

    rate: float
    content: float
    eos: float
    n_content: int


def fill_accuracy(model: DiffusionLM, rates: tuple[float, ...] = (0.1, 0.5, 1.0), n: int = 30,
                  gen_length: int = 64, seed: int = 0) -> list[FillAccuracy]:
    """Masked-character accuracy of `model` on `n` val problems per family at each mask rate."""
    from tabom.tasks import mixture
    from tabom.pretraining.pretrain import collate, response_ids

    problems = mixture("val", n, seed=seed)
    pairs = [(model.encode_prompt(p.prompt), response_ids(model, p.native, gen_length)) for p in problems]
    input_ids, attention_mask, response_mask = collate(model, pairs)  # (B, L) each
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.inference_mode():
        for rate in rates:
            masked = response_mask & (torch.rand(input_ids.shape, generator=gen) < rate)  # (B, L)
            noised = input_ids.masked_fill(masked, model.mask_token_id)
            logits = model(noised, attention_mask, positions=masked)  # (N, V), N = masked.sum()
            right = logits.argmax(-1) == input_ids[masked]  # (N,)
            is_eos = input_ids[masked] == model.eos_token_id  # (N,)
            content = right[~is_eos]
            out.append(FillAccuracy(rate, float(content.float().mean()) if content.numel() else float("nan"),
                                    float(right[is_eos].float().mean()) if is_eos.any() else float("nan"),
                                    int(content.numel())))
    return out


def attention_entropy(model: DiffusionLM, n: int = 8, gen_length: int = 64, seed: int = 0) -> list[float]:
    """Mean attention entropy per layer (nats) on `n` val problems per family, response masked.

    Each query's attention distribution over keys (B, heads, L, L) has entropy
    -sum_k a log a; this averages it over heads and the real (non-padding) query positions of
    every row. Uses eager attention for the one forward (SDPA does not return weights) and puts
    the model's attention implementation back afterwards.
    """
    from tabom.tasks import mixture
    from tabom.pretraining.pretrain import collate, response_ids

    problems = mixture("val", n, seed=seed)
    pairs = [(model.encode_prompt(p.prompt), response_ids(model, p.native, gen_length)) for p in problems]
    input_ids, attention_mask, response_mask = collate(model, pairs)  # (B, L) each
    noised = input_ids.masked_fill(response_mask, model.mask_token_id)
    backbone = model.backbone
    before = backbone.config._attn_implementation
    backbone.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            out = backbone.get_decoder()(input_ids=noised, attention_mask=attention_mask.to(torch.long),
                                         output_attentions=True)
    finally:
        backbone.set_attn_implementation(before)
    result = []
    for weights in out.attentions:  # (B, heads, L, L) each
        ent = -(weights * weights.clamp_min(1e-12).log()).sum(-1)  # (B, heads, L)
        result.append(float(ent.mean(1)[attention_mask].mean()))
    return result


COMPUTE_FAMILIES = ("math_chain", "math_linear", "code_trace")


def twin_free_masks(answer: str) -> list[tuple[int, int, list[int]]]:
    """For each arithmetic result in a native answer: (start, end) of its characters and the
    positions to mask (the result and every later digit, with a minus sign before one), all as
    indices into `answer`. E.g. "3+4=7\n7*2=14\n#### 14" -> [(4, 5, [4, 6, 8, 10, 11, 18, 19]),
    (10, 12, [10, 11, 18, 19])]."""
    from tabom.tasks.drill import BINARY, COMPARE

    spans = sorted([m.span(4) for m in BINARY.finditer(answer)] + [m.span(4) for m in COMPARE.finditer(answer)])
    out = []
    for start, end in spans:
        later = [q for q in range(end, len(answer)) if answer[q].isdigit()
                 or (answer[q] == "-" and q + 1 < len(answer) and answer[q + 1].isdigit())]
        out.append((start, end, list(range(start, end)) + later))
    return out


def compute_accuracy(model: DiffusionLM, n: int = 50, gen_length: int = 64, seed: int = 0,
                     families: tuple[str, ...] = COMPUTE_FAMILIES, batch_size: int = 64) -> dict[str, float]:
    """Per family: the fraction of arithmetic results in `n` val native answers that the model
    predicts right (argmax, one forward) with the result and every later digit masked.
    Needs a one-character-per-token tokenizer (the tiny model's)."""
    from tabom.tasks import get_family
    from tabom.pretraining.pretrain import collate, response_ids

    result: dict[str, float] = {}
    for family in families:
        rows: list[tuple[list[int], list[int], list[int], list[int]]] = []  # prompt, answer, masked, result
        for problem in get_family(family).problems("val", n, seed):
            if len(model.tokenizer.encode(problem.native, add_special_tokens=False)) != len(problem.native):
                raise ValueError("compute_accuracy: needs a character tokenizer (one token per character)")
            prompt = model.encode_prompt(problem.prompt)
            answer = response_ids(model, problem.native, gen_length)
            for start, end, masked in twin_free_masks(problem.native):
                rows.append((prompt, answer, masked, list(range(start, end))))
        right = 0
        with torch.inference_mode():
            for b in range(0, len(rows), batch_size):
                chunk = rows[b:b + batch_size]
                input_ids, attention_mask, _ = collate(model, [(p, a) for p, a, _, _ in chunk])  # (B, L)
                offset = input_ids.shape[1] - gen_length  # answers sit at the right end
                noised = input_ids.clone()
                scored = torch.zeros_like(input_ids, dtype=torch.bool)  # (B, L): result characters
                for i, (_, _, masked, res) in enumerate(chunk):
                    noised[i, [offset + q for q in masked]] = model.mask_token_id
                    scored[i, [offset + q for q in res]] = True
                hit = model(noised, attention_mask, positions=scored).argmax(-1) == input_ids[scored]  # (N,)
                # Packed row-major, so each row's result characters are one contiguous run.
                for run in hit.split(scored.sum(dim=1).tolist()):
                    right += bool(run.all())
        result[family] = right / len(rows) if rows else float("nan")
    return result


def drill_facts(n: int = 200, seed: int = 0, n_per_family: int = 7000) -> dict[str, list[tuple[str, str]]]:
    """Per compute family: up to `n` distinct arithmetic facts ("6+5=", "11") of its default
    *training* answers, the facts `--drill` trains on, in a seeded random order."""
    import random

    from tabom.tasks import get_family
    from tabom.tasks.drill import answer_facts

    result: dict[str, list[tuple[str, str]]] = {}
    for family in COMPUTE_FAMILIES:
        problems = get_family(family).problems("train", n_per_family, seed, at_most=True)
        facts = sorted(dict(answer_facts([p.native for p in problems])).items())
        random.Random(f"drill-probe-{seed}").shuffle(facts)
        result[family] = facts[:n]
    return result


def drill_accuracy(model: DiffusionLM, n: int = 200, seed: int = 0) -> dict[str, float]:
    """Per family: the fraction of `drill_facts` answered exactly (greedy, entropy order, 8 tokens
    in 8 steps): whether the model knows the bare facts, with nothing to copy."""
    from tabom.decoding.text import generate_text

    result: dict[str, float] = {}
    for family, facts in drill_facts(n, seed).items():
        outputs = generate_text(model, [q for q, _ in facts], gen_length=8, steps=8, strategy="entropy")
        result[family] = sum(o.strip() == a for o, (_, a) in zip(outputs, facts, strict=True)) / len(facts)
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: fill accuracy, attention entropy, computed results per checkpoint (+ ``--drill``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="'tiny' or tiny checkpoint folders")
    parser.add_argument("--n", type=int, default=30, help="val problems per family")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--drill", action="store_true",
                        help="also answer 200 bare training facts per family (drill_accuracy)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n: must be >= 1, got {args.n}")
    if args.threads < 1:
        parser.error(f"--threads: must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    from tabom.errors import exit_on_failure

    exit_on_failure(lambda: _probe(args.checkpoints, args.n, args.drill))


def _probe(checkpoints: list[str], n: int, drill: bool) -> None:
    from tabom.models import load

    for name in checkpoints:
        model = load(name, device="cpu")
        cells = [f"t={r.rate:g}: content {r.content:.2f} (n={r.n_content}), eos {r.eos:.2f}"
                 for r in fill_accuracy(model, n=n)]
        ent = " ".join(f"{e:.2f}" for e in attention_entropy(model))
        comp = " ".join(f"{k} {v:.2f}" for k, v in compute_accuracy(model, n=n).items())
        print(f"{name}: " + " | ".join(cells) + f" | attention entropy per layer: {ent}"
              + f" | results computed (twins masked): {comp}")
        if drill:
            print(f"{name}: bare facts right: "
                  + " ".join(f"{k} {v:.2f}" for k, v in drill_accuracy(model).items()))


if __name__ == "__main__":
    main()
