"""Evaluate a DiffusionLM on task families: decode, verify, count.

    settings = DecodeSettings(gen_length=64, steps=64)            # full diffusion decoding
    report = evaluate(model, ["math_chain", "code_trace"], settings, limit=200)
    print(report.accuracy())                                       # {"math_chain": 0.41, ...}

Every sample is kept (prompt, output, correctness, decode steps) so results can be inspected and
written as JSON by `tabom eval`. Decoding is the engine's; verification is each family's own.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

from tabom.models.diffusion_lm import DiffusionLM


@dataclass
class DecodeSettings:
    """How responses are decoded. `strategy=None` takes the model's default (entropy/confidence)."""

    gen_length: int = 64
    steps: int | None = None
    """Model forwards per response; None -> gen_length (one token per step: full diffusion decoding)."""
    block_length: int | None = None
    strategy: str | None = None
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    tokens_per_step: int | None = None
    """k tokens per step (the paper's parallel decoding uses 2); overrides the schedule."""
    batch_size: int = 64
    seed: int = 0

    def resolved(self, model: DiffusionLM) -> "DecodeSettings":
        """A copy with the model-dependent defaults filled in."""
        out = DecodeSettings(**asdict(self))
        out.strategy = out.strategy or model.default_strategy
        out.steps = out.steps or out.gen_length
        return out


@dataclass
class Sample:
    """One evaluated problem."""

    task: str
    id: str
    prompt: str
    output: str
    answer: str
    correct: bool
    decode_steps: int
    extracted: str | None = None


@dataclass
class EvalReport:
    """All samples of an evaluation plus the settings that produced them."""

    model: str
    settings: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    def accuracy(self) -> dict[str, float]:
        """Accuracy per task, in first-seen task order."""
        out: dict[str, list[bool]] = {}
        for s in self.samples:
            out.setdefault(s.task, []).append(s.correct)
        return {k: sum(v) / len(v) for k, v in out.items()}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.samples:
            out[s.task] = out.get(s.task, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "settings": self.settings, "seconds": round(self.seconds, 2),
                "accuracy": self.accuracy(), "counts": self.counts(),
                "samples": [asdict(s) for s in self.samples]}


def resolve_task_names(spec: str) -> list[str]:
    """'all' | a domain ('math', 'code', 'ood') | comma-separated family names -> family names."""
    from tabom.tasks import FAMILIES, families_for

    names: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part == "all":
            names.extend(FAMILIES)
        elif part in ("math", "code", "ood"):
            names.extend(families_for(part))
        elif part in FAMILIES:
            names.append(part)
        else:
            raise ValueError(f"tasks: unknown task {part!r} (known: {', '.join(FAMILIES)}, or all/math/code/ood)")
    return list(dict.fromkeys(names))


def decode_texts(
    model: DiffusionLM, prompts: Sequence[str], settings: DecodeSettings,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[list[str], list[int]]:
    """Decode text prompts in batches -> (responses cut at EOS, forwards spent per response)."""
    from tabom.decoding import generate

    s = settings.resolved(model)
    gen = torch.Generator(device="cpu").manual_seed(s.seed)
    texts: list[str] = []
    steps: list[int] = []
    for start in range(0, len(prompts), s.batch_size):
        chunk = [model.encode_prompt(p) for p in prompts[start:start + s.batch_size]]
        result = generate(model, chunk, gen_length=s.gen_length, steps=s.steps, block_length=s.block_length,
                          strategy=s.strategy, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
                          tokens_per_step=s.tokens_per_step, generator=gen)
        texts.extend(model.decode(row) for row in result.tokens)
        steps.extend(int(n) for n in result.steps_run)
        if on_batch is not None:
            on_batch(len(chunk))
    return texts, steps


def evaluate(
    model: DiffusionLM,
    tasks: Sequence[str],
    settings: DecodeSettings | None = None,
    *,
    limit: int = 200,
    split: str = "test",
    progress: bool = True,
) -> EvalReport:
    """Decode `limit` problems of each built-in family's split and verify them."""
    from tabom.progress import progress_bar
    from tabom.tasks import get_family

    settings = (settings or DecodeSettings()).resolved(model)
    report = EvalReport(model=model.name, settings=asdict(settings) | {"split": split, "limit": limit})
    start = time.time()
    with progress_bar(enabled=progress) as bar:
        for task in tasks:
            family = get_family(task)
            problems = family.problems(split, limit, seed=settings.seed)
            bar_id = bar.add_task(task, total=len(problems))
            outputs, steps = decode_texts(model, [p.prompt for p in problems], settings,
                                          on_batch=lambda n, t=bar_id: bar.update(t, advance=n))
            for problem, output, n_steps in zip(problems, outputs, steps):
                report.samples.append(Sample(task=task, id=problem.id, prompt=problem.prompt, output=output,
                                             answer=problem.answer, correct=bool(family.verify(problem, output)),
                                             decode_steps=n_steps))
            acc = report.accuracy()[task]
            bar.update(bar_id, description=f"{task} acc {acc:.3f}")
    report.seconds = time.time() - start
    return report
