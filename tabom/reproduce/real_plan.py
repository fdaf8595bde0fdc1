"""The paper's grid on a real checkpoint: the plan file of ``tabom reproduce --model DIR --plan PLAN.yaml``.

    plan = load_real_plan("plan.yaml", model="/ckpt/Dream-v0-Instruct-7B")
    plan.families("math")        # ['gsm8k', 'math500']: the domain's test benchmarks (in-domain columns)
    plan.ood_families("math")    # ['humaneval', 'mbpp', 'ifeval']: the other domain's and the OOD ones

A plan names the data (every path relative to the plan file), the seeds and a few sizes::

    seeds: [0]
    gen_length: 256              # trajectory responses (the paper's 256)
    parallel_tokens: 2           # Table 4
    decode_batch: 16             # or auto: the largest batch that fits (decoding memory)
    tokens_per_second: 1500      # decoding throughput of your GPU, for --dry-run's GPU-hours
    domains:
      math:
        train: data/prm12k.jsonl          # prompts (+ answer to verify, + solution for SFT-GT)
        n_train: 2000                     # optional cap on the training prompts
        val: {gsm8k: data/gsm8k_val.jsonl, math500: data/math500_val.jsonl}
        test: {gsm8k: data/gsm8k_test.jsonl, math500: data/math500_test.jsonl}
      code:
        train: data/ling_coder.jsonl
        val: {mbpp: data/mbpp_val.jsonl}
        test: {humaneval: data/humaneval.jsonl, mbpp: data/mbpp_test.jsonl}
    ood: {ifeval: data/ifeval.jsonl}
    tds_n: 64                    # TDS prompts per in-domain benchmark
    eval_limit: 200              # optional: problems per benchmark file (default: whole files)
    eval_gen_length: 64          # optional: one response length for every benchmark (quick looks)
    train_steps: 100             # optional: optimizer steps of every run (default: the recipes' 5 epochs)
    keep: correct                # or all: train on every trajectory, not only verified ones

Evaluation is the release's protocol (:mod:`tabom.tasks.release_protocol`) with the release's
per-benchmark decoding (``release-<family>-<benchmark>`` presets). The plan is a drop-in for the
tiny plan: ``families``/``ood_families`` return benchmark names, so the tiny run's results and
report code read a real run unchanged. A missing file or a bad field is one error naming the plan
file, line and field, raised before anything runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tabom.tasks.benchmarks import BENCHMARKS

REAL_DOMAINS = ("math", "code")
DEFAULT_TOKENS_PER_SECOND = 1000.0
"""A stated (not measured) decoding throughput for --dry-run, in response tokens per second per
GPU: used when the plan gives none. No GPU was available to measure it (docs/real_checkpoints.md)."""


@dataclass
class RealDomain:
    """One post-training domain: the training prompts, validation and test benchmark files."""

    train: str
    test: dict[str, str]
    val: dict[str, str] = field(default_factory=dict)
    n_train: int | None = None


@dataclass
class RealPlan:
    """What ``tabom reproduce --plan`` runs on a real checkpoint (a drop-in for :class:`Plan`)."""

    model: str = ""
    family: Literal["dream", "llada", "tiny", ""] = ""
    domains_spec: dict[str, RealDomain] = field(default_factory=dict)
    ood: dict[str, str] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    gen_length: int = 256
    parallel_tokens: int = 2
    decode_batch: int = 16
    tds_n: int = 64
    train_steps: int | None = None
    eval_limit: int | None = None
    eval_gen_length: int | None = None
    """Replaces every preset's response length (steps alike; quick looks and tests). None: the release's."""
    keep: Literal["correct", "all"] = "correct"
    tokens_per_second: float | None = None
    source: str = ""
    ablation_domain: None = None
    grid_domain: None = None
    sweep_domain: None = None
    quick: bool = False

    @property
    def domains(self) -> tuple[str, ...]:
        """The plan's domains, in the paper's order."""
        return tuple(d for d in REAL_DOMAINS if d in self.domains_spec)

    @property
    def n_train(self) -> int:
        """The largest training cap (0 when uncapped): shown in the report's plan line."""
        return max((d.n_train or 0) for d in self.domains_spec.values())

    @property
    def n_eval(self) -> int | None:
        """Problems per benchmark evaluated (None: whole files)."""
        return self.eval_limit

    @property
    def n_tds(self) -> int:
        """TDS prompts per in-domain benchmark."""
        return self.tds_n

    def families(self, domain: str) -> list[str]:
        """The domain's test benchmarks (its in-domain columns)."""
        return list(self.domains_spec[domain].test)

    def ood_families(self, domain: str) -> list[str]:
        """The other domains' test benchmarks, then the plan's OOD ones."""
        others = [b for d in self.domains if d != domain for b in self.domains_spec[d].test]
        return others + [b for b in self.ood if b not in others]

    def eval_families(self, domain: str) -> list[str]:
        """Every benchmark a domain's models are tested on: in-domain, then OOD."""
        return self.families(domain) + self.ood_families(domain)

    def test_file(self, benchmark: str) -> str:
        """The test file of a benchmark (in-domain tests of any domain, or an OOD file)."""
        for d in self.domains_spec.values():
            if benchmark in d.test:
                return d.test[benchmark]
        return self.ood[benchmark]

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (paths as given, resolved against the plan file)."""
        out = asdict(self)
        out["domains"] = list(self.domains)
        return out


def _check_file(path: str, base: Path, where: str) -> str:
    p = Path(path)
    p = p if p.is_absolute() else base / p
    if not p.exists():
        raise FileNotFoundError(f"{where}: {p}: no such file")
    return str(p)


def _check_benchmarks(spec: Any, base: Path, where: str) -> dict[str, str]:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping benchmark: file")
    out = {}
    for name, path in spec.items():
        if name not in BENCHMARKS:
            raise ValueError(f"{where}.{name}: unknown benchmark (known: {', '.join(BENCHMARKS)})")
        if not isinstance(path, str):
            raise ValueError(f"{where}.{name}: expected a file path")
        out[name] = _check_file(path, base, f"{where}.{name}")
    return out


def load_real_plan(path: str | Path, *, model: str) -> RealPlan:
    """Read and check a plan file; every path must exist and every benchmark file must parse.

    Errors are ``PLAN:LINE: field: problem`` (ValueError, or FileNotFoundError for a missing file).
    """
    from tabom.tasks.benchmarks import load_benchmark  # noqa: PLC0415
    from tabom.typed_yaml import line_map, load_yaml, read_text  # noqa: PLC0415

    path = Path(path)
    text = read_text(path, "plan")
    raw = load_yaml(text, str(path))
    lines = line_map(text)
    base = path.resolve().parent

    def at(key: str) -> str:
        line = lines.get(key)
        return f"{path}:{line}: {key}" if line else f"{path}: {key}"

    if not isinstance(raw, dict):
        raise ValueError(f"{path}:1: plan: expected a mapping")
    known = {"seeds", "gen_length", "parallel_tokens", "decode_batch", "tokens_per_second", "domains", "ood",
             "tds_n", "train_steps", "eval_limit", "eval_gen_length", "keep", "family"}
    for key in raw:
        if key not in known:
            raise ValueError(f"{at(key)}: unknown field (known: {', '.join(sorted(known))})")
    domains_raw = raw.get("domains")
    if not isinstance(domains_raw, dict) or not domains_raw:
        raise ValueError(f"{at('domains')}: give at least one of math, code with train/test files")
    domains: dict[str, RealDomain] = {}
    for name, spec in domains_raw.items():
        key = f"domains.{name}"
        if name not in REAL_DOMAINS:
            raise ValueError(f"{at(key)}: unknown domain (known: {', '.join(REAL_DOMAINS)})")
        if not isinstance(spec, dict) or "train" not in spec or "test" not in spec:
            raise ValueError(f"{at(key)}: needs train: FILE and test: {{benchmark: FILE}}")
        extra = set(spec) - {"train", "test", "val", "n_train"}
        if extra:
            raise ValueError(f"{at(key + '.' + sorted(extra)[0])}: unknown field (known: train, test, val, n_train)")
        n_train = spec.get("n_train")
        if n_train is not None and (not isinstance(n_train, int) or n_train < 1):
            raise ValueError(f"{at(key + '.n_train')}: expected a positive integer")
        domains[name] = RealDomain(train=_check_file(str(spec["train"]), base, at(key + ".train")),
                                   test=_check_benchmarks(spec["test"], base, at(key + ".test")),
                                   val=_check_benchmarks(spec.get("val") or {}, base, at(key + ".val")),
                                   n_train=n_train)
    ood = _check_benchmarks(raw.get("ood") or {}, base, at("ood"))
    values: dict[str, Any] = {}
    for key, kind in (("gen_length", int), ("parallel_tokens", int), ("tds_n", int), ("train_steps", int),
                      ("eval_limit", int), ("eval_gen_length", int), ("tokens_per_second", float)):
        if key in raw and raw[key] is not None:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (
                    kind is int and not isinstance(value, int)):
                raise ValueError(f"{at(key)}: expected a positive {kind.__name__}, got {value!r}")
            values[key] = kind(value)
    batch = raw.get("decode_batch", 16)
    if not (batch == "auto" or (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1)):
        raise ValueError(f"{at('decode_batch')}: expected a positive integer or 'auto', got {batch!r}")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"{at('seeds')}: expected a non-empty list of integers")
    keep = raw.get("keep", "correct")
    if keep not in ("correct", "all"):
        raise ValueError(f"{at('keep')}: expected correct or all, got {keep!r}")
    family = raw.get("family") or _family_of(model)
    if family not in ("dream", "llada", "tiny"):
        raise ValueError(f"{at('family')}: expected dream or llada, got {family!r}")
    plan = RealPlan(model=model, family=family, domains_spec=domains, ood=ood, seeds=tuple(seeds),
                    decode_batch=batch, keep=keep, source=str(path), **values)  # type: ignore[arg-type]
    for domain in plan.domains:  # every benchmark file parses (columns checked) before anything runs
        for split, files in (("val", domains[domain].val), ("test", domains[domain].test)):
            for name, file in files.items():
                load_benchmark(f"{name}={file}", protocol="release").items(None)
    for name, file in ood.items():
        load_benchmark(f"{name}={file}", protocol="release").items(None)
    return plan


def _family_of(model: str) -> str:
    """dream / llada / tiny from the model folder's config.json (``model_type``), or ''."""
    import json  # noqa: PLC0415

    if model == "tiny":
        return "tiny"
    config = Path(model) / "config.json"
    if not config.is_file():
        return ""
    kind = str(json.loads(config.read_text(encoding="utf-8")).get("model_type", "")).lower()
    return "dream" if "dream" in kind or "qwen" in kind else "llada" if "llada" in kind else kind
