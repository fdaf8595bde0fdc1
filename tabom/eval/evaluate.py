"""Evaluate a DiffusionLM on task families and benchmark files: decode, score, keep every sample.

    settings = DecodeSettings(gen_length=64, steps=64)             # full diffusion decoding
    report = evaluate(model, resolve_tasks("math_chain,gsm8k=data/gsm8k.jsonl"), settings, limit=200)
    report.metrics()      # {"math_chain": {"accuracy": 0.41, "n": 200}, "gsm8k": {...}}

Every sample is kept (prompt, output, extracted answer, correctness, decode steps) so results can
be inspected and written as JSON by `tabom eval`; the settings used (tokens_per_step included)
and how each task was scored are recorded beside them. Decoding is the engine's; scoring is each
source's own (:mod:`tabom.eval.sources`). ``decode_fn`` replaces the decoder (tests use it to
feed known outputs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from tabom.decoding.settings import DecodeSettings
from tabom.eval.sources import TaskSource, resolve_tasks

__all__ = ["DecodeSettings", "EvalReport", "Sample", "evaluate"]

DecodeFn = Callable[[Any, list[str], "DecodeSettings", torch.Generator], tuple[list[str], list[int]]]


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
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalReport:
    """All samples of an evaluation plus the settings that produced them."""

    model: str
    settings: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)
    methods: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def _by_task(self) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = {}
        for s in self.samples:
            out.setdefault(s.task, []).append(s)
        return out

    def accuracy(self) -> dict[str, float]:
        """Accuracy per task, in first-seen task order."""
        return {k: sum(s.correct for s in v) / len(v) for k, v in self._by_task().items()}

    def counts(self) -> dict[str, int]:
        """Number of samples per task, in first-seen task order."""
        return {k: len(v) for k, v in self._by_task().items()}

    def metrics(self) -> dict[str, dict[str, float]]:
        """Per task: accuracy and n; IFEval also loose (prompt level) and instruction-level rates."""
        out: dict[str, dict[str, float]] = {}
        for task, samples in self._by_task().items():
            m: dict[str, float] = {"accuracy": sum(s.correct for s in samples) / len(samples), "n": len(samples)}
            if samples and "loose" in samples[0].extra:
                m["loose"] = sum(bool(s.extra["loose"]) for s in samples) / len(samples)
                strict = [x for s in samples for x in s.extra["inst_strict"]]
                loose = [x for s in samples for x in s.extra["inst_loose"]]
                m["inst_strict"] = sum(strict) / max(1, len(strict))
                m["inst_loose"] = sum(loose) / max(1, len(loose))
            out[task] = m
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: model, settings, methods, seconds, metrics, accuracy, counts, all samples."""
        return {"model": self.model, "settings": self.settings, "methods": self.methods,
                "seconds": round(self.seconds, 2), "metrics": self.metrics(), "accuracy": self.accuracy(),
                "counts": self.counts(), "samples": [asdict(s) for s in self.samples]}


def resolve_task_names(spec: str) -> list[str]:
    """Family names of a spec without benchmarks (kept for callers of the first version)."""
    return [s.name for s in resolve_tasks(spec)]


def decode_texts(
    model: Any, prompts: Sequence[str], settings: DecodeSettings, generator: torch.Generator | None = None
) -> tuple[list[str], list[int]]:
    """Decode text prompts (one engine call, batched inside) -> (responses cut at EOS, forwards per response)."""
    from tabom.decoding import generate  # noqa: PLC0415
    from tabom.eval.protocol import encode_eval_prompt  # noqa: PLC0415

    s = settings.resolved(model)
    gen = generator if generator is not None else torch.Generator(device="cpu").manual_seed(s.seed)
    ids = [encode_eval_prompt(model, p) for p in prompts]
    assert s.steps is not None and s.strategy is not None
    result = generate(model, ids, s, generator=gen, batch_size=s.batch_size)
    texts = [model.decode(row) for row in result.tokens]
    return texts, [int(n) for n in result.steps_run]


def _check_prompts_fit(model: Any, loaded: Sequence[tuple[TaskSource, Sequence[Any]]], gen_length: int) -> None:
    """Raise `ValueError` naming the task and problem of the first prompt that, with
    `gen_length` response tokens, exceeds the model's positions."""
    from tabom.eval.protocol import encode_eval_prompt  # noqa: PLC0415
    from tabom.trajectories.prompts import check_prompt_fits  # noqa: PLC0415

    for source, items in loaded:
        for item in items:
            n = len(encode_eval_prompt(model, item.prompt))
            check_prompt_fits(model, n, gen_length, f"task {source.name} problem {item.id}")


def _my_batches(model: Any, items: Sequence[Any], batch_size: int, shard: Any, encode: bool) -> list[list[int]]:
    """This rank's batches (lists of indices into ``items``), each exactly a batch one process decodes.

    One process cuts ``items`` into consecutive batches of ``batch_size``; with several processes
    the same batches are dealt out whole, balanced by their prompts' total length (tokens, or
    characters for stand-in decoders), so every batch is decoded with the same rows, padding and
    noise as in one process and the outputs are identical. With fewer batches than processes the
    problems are cut into one batch per process instead.
    """
    n = len(items)
    size = batch_size if shard.world == 1 or -(-n // batch_size) >= shard.world else -(-n // shard.world)
    batches = [list(range(lo, min(n, lo + size))) for lo in range(0, n, size)]
    if shard.world == 1:
        return batches
    from tabom.eval.protocol import encode_eval_prompt  # noqa: PLC0415

    lengths = [len(encode_eval_prompt(model, i.prompt)) if encode else len(str(i.prompt)) for i in items]
    return [batches[b] for b in shard.take([sum(lengths[i] for i in batch) for batch in batches])]


def evaluate(
    model: Any,
    tasks: Sequence[str | TaskSource] | str,
    settings: DecodeSettings | None = None,
    *,
    limit: int | None = 200,
    split: str = "test",
    progress: bool = True,
    decode_fn: DecodeFn | None = None,
    extra_settings: dict[str, Any] | None = None,
    on_batch: Callable[[list[Sample]], None] | None = None,
    shard: Any = None,
) -> EvalReport:
    """Decode and score up to ``limit`` problems of each task (None: the whole benchmark file).

    Args:
        model: a DiffusionLM (or anything ``decode_fn`` accepts).
        tasks: a spec string, or a list of specs / :class:`TaskSource`s.
        settings: decoding; model defaults filled in by :meth:`DecodeSettings.resolved`.
        decode_fn: ``(model, prompts, settings, generator) -> (texts, steps)``; default the engine.
        extra_settings: recorded beside the settings (e.g. the preset's name, the adapter).
        on_batch: called with each batch's samples as soon as they are scored (`tabom eval`
            appends them to its samples file, so a crash keeps every finished batch). With
            several processes rank 0 calls it once per task, with every rank's samples in order.
        shard: a :class:`tabom.eval.sharding.Shard` (None: one process). Under torchrun each
            rank decodes and scores its length-balanced share of every task; every rank returns
            the whole report, samples in problem order, as one process would.

    Every task's problems are loaded, and (when decoding with the engine) every prompt is checked
    against the model's positions, before the first batch is decoded: a prompt too long raises
    `ValueError` naming the task and problem.
    """
    from tabom.eval.sharding import Shard, merge_in_order  # noqa: PLC0415
    from tabom.progress import progress_bar  # noqa: PLC0415

    shard = shard or Shard()
    decode = decode_fn or decode_texts
    settings = (settings or DecodeSettings()).resolved(model)
    if isinstance(tasks, str):
        sources: list[TaskSource] = resolve_tasks(tasks)
    else:
        sources = [s for t in tasks for s in (resolve_tasks(t) if isinstance(t, str) else [t])]
    recorded = asdict(settings) | {"split": split, "limit": limit} | (extra_settings or {})
    report = EvalReport(model=str(getattr(model, "name", "")), settings=recorded)
    start = time.time()
    loaded = [(source, source.load(limit, split, settings.seed)) for source in sources]
    if decode_fn is None:
        _check_prompts_fit(model, loaded, int(settings.gen_length or 0))
    for source, items in loaded:
        shard.check_fits(len(items), f"task {source.name}")
    with progress_bar(enabled=progress and shard.is_main) as bar:
        for source, all_items in loaded:
            report.methods[source.name] = source.method
            batches = _my_batches(model, all_items, settings.batch_size, shard, decode_fn is None)
            mine = [i for batch in batches for i in batch]
            bar_id = bar.add_task(source.name, total=len(mine))
            right = done = 0
            scored: list[Sample] = []
            for batch_indices in batches:
                chunk = [all_items[i] for i in batch_indices]
                # the noise of a batch depends on the seed and the batch only, never on the process
                gen = torch.Generator(device="cpu").manual_seed(settings.seed * 1_000_003 + batch_indices[0])
                outputs, steps = decode(model, [i.prompt for i in chunk], settings, gen)
                verdicts = source.score(chunk, outputs)
                batch = [Sample(task=source.name, id=item.id, prompt=item.prompt, output=output, answer=item.answer,
                                correct=bool(v.correct), decode_steps=n_steps, extracted=v.extracted,
                                extra=dict(v.extra))
                         for item, output, n_steps, v in zip(chunk, outputs, steps, verdicts, strict=True)]
                scored.extend(batch)
                right += sum(s.correct for s in batch)
                if on_batch is not None and shard.world == 1:
                    on_batch(batch)
                done += len(chunk)
                bar.update(bar_id, advance=len(chunk), description=f"{source.name} acc {right / done:.3f}")
            if shard.world == 1:
                report.samples.extend(scored)
            else:  # every rank's (problem index, sample), back in problem order
                merged = merge_in_order(shard.all_gather(list(zip(mine, scored, strict=True))))
                report.samples.extend(merged)
                if on_batch is not None and shard.is_main:
                    on_batch(merged)  # the task's samples in problem order, as one process writes them
    report.seconds = time.time() - start
    return report
