"""What `tabom eval` can score: built-in task families and benchmark files, behind one interface.

    sources = resolve_tasks("math_chain,gsm8k=data/gsm8k/test.jsonl")
    items = sources[0].load(limit=100, split="test", seed=0)      # list[BenchItem]
    verdicts = sources[0].score(items, outputs)                   # list[Scored]

A spec is ``all``, a domain (``math``, ``code``, ``ood``), a family name, or ``name=path`` for a
benchmark of :mod:`tabom.tasks.benchmarks` (gsm8k, math500, humaneval, mbpp, ifeval).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tabom.tasks.benchmarks import BenchItem, Benchmark, Scored, is_benchmark_spec, load_benchmark


class TaskSource(Protocol):
    """A named set of problems with a scorer."""

    name: str
    method: str

    def load(self, limit: int | None, split: str, seed: int) -> list[BenchItem]:
        """At most ``limit`` problems (None: the source's default) of ``split``, drawn with ``seed``."""

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """One verdict per output, in the order of ``items``."""


@dataclass
class FamilySource:
    """A built-in task family (problems drawn from its split; the family's verifier scores)."""

    name: str
    method: str = "family verifier"

    def _family(self) -> Any:
        from tabom.tasks import get_family  # noqa: PLC0415

        return get_family(self.name)

    def load(self, limit: int | None, split: str, seed: int) -> list[BenchItem]:
        """``limit`` problems (200 when None) of the family's ``split``, drawn with ``seed``."""
        problems = self._family().problems(split, 200 if limit is None else limit, seed=seed)
        return [BenchItem(p.id, p.prompt, p.answer, {"problem": p}) for p in problems]

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """The family's verifier on each output; the extracted answer is the output's answer text."""
        from tabom.tasks.answers import extract_answer_text  # noqa: PLC0415

        verdicts = self._family().verify_many([i.meta["problem"] for i in items], outputs)
        return [Scored(bool(v), extract_answer_text(o)) for v, o in zip(verdicts, outputs)]


@dataclass
class BenchmarkSource:
    """A benchmark file; the split and seed are ignored (the file's first ``limit`` records)."""

    bench: Benchmark

    @property
    def name(self) -> str:
        """The benchmark's name."""
        return self.bench.name

    @property
    def method(self) -> str:
        """How the benchmark decides correctness."""
        return self.bench.method

    def load(self, limit: int | None, split: str, seed: int) -> list[BenchItem]:
        """The file's first ``limit`` items (all when None); ``split`` and ``seed`` are ignored."""
        return self.bench.items(limit)

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """The benchmark's own scorer."""
        return self.bench.score(items, outputs)


def resolve_tasks(spec: str, **bench_kwargs: Any) -> list[TaskSource]:
    """Comma-separated specs -> sources, duplicates dropped; ``bench_kwargs`` go to benchmarks."""
    from tabom.tasks import FAMILIES, families_for  # noqa: PLC0415

    names: list[str] = []
    sources: list[TaskSource] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if is_benchmark_spec(part):
            bench = load_benchmark(part, **bench_kwargs)
            if bench.name in names:
                raise ValueError(f"tasks: benchmark {bench.name!r} given twice")
            names.append(bench.name)
            sources.append(BenchmarkSource(bench))
            continue
        if part == "all":
            found = list(FAMILIES)
        elif part in ("math", "code", "ood"):
            found = list(families_for(part))
        elif part in FAMILIES:
            found = [part]
        else:
            raise ValueError(
                f"tasks: unknown task {part!r} (families: {', '.join(FAMILIES)}; all/math/code/ood; "
                "or a benchmark as name=path with name one of gsm8k, math500, humaneval, mbpp, ifeval)"
            )
        for name in found:
            if name not in names:
                names.append(name)
                sources.append(FamilySource(name))
    if not sources:
        raise ValueError(f"tasks: {spec!r} names no task")
    return sources
