"""The experiment grid of `tabom reproduce` as data: methods, ablation, grid, sweep and sizes.

    plan = make_plan(quick=True)                      # math only, one seed, small sets
    plan = make_plan(quick=False, seeds=3, n_eval=100)
    [m.label for m in MAIN_METHODS]                   # No-SFT, SFT-GT, SFT-SD, dInfer, T3D, TABOM
    plan.eval_families("math")                        # in-domain first, then OOD

Every trained model is a :class:`TrainRun`: a tiny recipe plus (only for the ablation, the
lambda x margin grid and the window sweep) a few objective fields. Runs whose objective fields
equal the recipe's own values are the same run, so the grid cell (lambda 1, margin 0.2), the
sweep's W = 16 and the ablation's local "+ ranking" row reuse the main TABOM adapter.

Window mapping (Table 9): the paper decodes 256-token responses and sweeps
W in {16, 32, 48, 64, 256 (whole response)}. The tiny model decodes `gen_length` (64) tokens,
so each W keeps its fraction of the response: W_tiny = round(W * gen_length / 256), i.e.
{4, 8, 12, 16} for 64 tokens, and "whole response" is W = gen_length - 1 (the objective needs
`s_max >= W` for a row to carry CE, and `s_max = gen_length - 1`, so the only cut left is the
fully masked state: the window spans the whole response).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DOMAINS: tuple[str, ...] = ("math", "code")
PAPER_GEN_LENGTH = 256
"""Response length of the paper's self-distilled trajectories (Section 4)."""
PAPER_WINDOWS: tuple[int | None, ...] = (16, 32, 48, 64, None)
"""Table 9's W values; None is the whole response (the paper's W = 256)."""
GRID_LAMBDAS: tuple[float, ...] = (1.0, 2.0)
GRID_MARGINS: tuple[float, ...] = (0.1, 0.2, 0.3)


@dataclass(frozen=True)
class TrainRun:
    """One post-training recipe: a tiny recipe and the objective fields changed from it."""

    recipe: str
    """A built-in recipe name, e.g. ``tiny_tabom``."""
    data: Literal["gt", "sd"]
    """``gt``: ground-truth (reference) answers; ``sd``: the self-distilled trajectories."""
    objective: tuple[tuple[str, Any], ...] = ()
    """(field, value) pairs of the objective changed from the recipe (sorted)."""

    @property
    def key(self) -> str:
        """Folder name: the recipe without ``tiny_`` plus the changed fields (``tabom__margin0.1``)."""
        base = self.recipe.removeprefix("tiny_")
        if not self.objective:
            return base
        parts = [f"{k}{str(v).lower()}" for k, v in self.objective]
        return base + "__" + "_".join(parts)

    def overrides(self) -> list[str]:
        """The objective overrides as ``objective.k=v`` strings (YAML values)."""
        return [f"objective.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.objective]


@dataclass(frozen=True)
class Method:
    """A row of the paper's tables: its label and the run that makes it (None: the base model)."""

    label: str
    run: TrainRun | None

    @property
    def key(self) -> str:
        """The folder name of the method's artifacts: its run's key, ``no_sft`` for the base model."""
        return "no_sft" if self.run is None else self.run.key


NO_SFT = Method("No-SFT", None)
SFT_GT = Method("SFT-GT", TrainRun("tiny_sft_gt", "gt"))
SFT_SD = Method("SFT-SD", TrainRun("tiny_sft_sd", "sd"))
DINFER = Method("dInfer", TrainRun("tiny_dinfer", "sd"))
T3D = Method("T3D", TrainRun("tiny_t3d", "sd"))
TABOM = Method("TABOM", TrainRun("tiny_tabom", "sd"))
MAIN_METHODS: tuple[Method, ...] = (NO_SFT, SFT_GT, SFT_SD, DINFER, T3D, TABOM)
"""Tables 2-3 rows, in the paper's order."""
TDS_METHODS: tuple[Method, ...] = (NO_SFT, SFT_SD, TABOM)
"""Table 6 rows (the paper's "Base" is No-SFT)."""


def canonical(run: TrainRun, recipe_objective: dict[str, Any]) -> TrainRun:
    """Drop objective fields equal to the recipe's own values (so equal configs share a run)."""
    changed = tuple(sorted((k, v) for k, v in run.objective if recipe_objective.get(k) != v))
    return TrainRun(run.recipe, run.data, changed)


def ablation_rows() -> list[tuple[str, str, Method]]:
    """Table 5: (section, row label, method). The local "+ ranking" row is TABOM itself."""
    traj_global = TrainRun("tiny_trajectory", "sd", (("global_window", True),))
    tabom_global = TrainRun("tiny_tabom", "sd", (("global_window", True),))
    return [
        ("", "Base (SFT-SD)", SFT_SD),
        ("Global timestep window", "Traj. masking (only CE)", Method("Traj. global", traj_global)),
        ("Global timestep window", "+ Pairwise ranking", Method("TABOM global", tabom_global)),
        ("Local timestep window", "Traj. masking (only CE)", Method("Traj. local", TrainRun("tiny_trajectory", "sd"))),
        ("Local timestep window", "+ Pairwise ranking (TABOM)", TABOM),
    ]


def grid_methods(lambdas: tuple[float, ...] = GRID_LAMBDAS,
                 margins: tuple[float, ...] = GRID_MARGINS) -> list[tuple[float, float, Method]]:
    """Table 7: (lambda, margin, method) for every cell."""
    out = []
    for lam in lambdas:
        for margin in margins:
            run = TrainRun("tiny_tabom", "sd", (("margin", float(margin)), ("rank_lambda", float(lam))))
            out.append((lam, margin, Method(f"TABOM l={lam:g} m={margin:g}", run)))
    return out


def map_window(paper_w: int | None, gen_length: int) -> int:
    """The tiny W standing for the paper's W (module docstring); None means the whole response.

    Example (gen_length 64): 16 -> 4, 32 -> 8, 48 -> 12, 64 -> 16, None -> 63.
    """
    if paper_w is None:
        return gen_length - 1
    return max(2, min(gen_length - 1, round(paper_w * gen_length / PAPER_GEN_LENGTH)))


def sweep_methods(gen_length: int, windows: tuple[int | None, ...] = PAPER_WINDOWS) -> list[tuple[str, int, Method]]:
    """Table 9: (paper's W as text, tiny W, method); CE window M and ranking window W set alike."""
    out = []
    for paper_w in windows:
        w = map_window(paper_w, gen_length)
        run = TrainRun("tiny_tabom", "sd", (("ce_window", w), ("rank_window", w)))
        name = "whole" if paper_w is None else str(paper_w)
        out.append((name, w, Method(f"TABOM W={w}", run)))
    return out


MAX_SEEDS = 100
"""Most training seeds per method `make_plan` takes (the full plan's 3 take hours on a CPU)."""


@dataclass
class Plan:
    """Everything a reproduction runs; :func:`make_plan` fills the per-mode defaults."""

    model: str = "tiny"
    domains: tuple[str, ...] = DOMAINS
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: int = 500
    """Training prompts per family (a domain has two families)."""
    n_eval: int = 36
    """Test (and val) problems per family."""
    n_tds: int = 16
    """TDS prompts per in-domain family (the paper uses 64 trajectories; 2 x 16 here fits the CPU budget)."""
    train_steps: int | None = None
    """Optimizer steps of every run alike; None keeps the recipes' epochs."""
    gen_length: int = 64
    """Response length of trajectories and evaluation (the tiny model's 64)."""
    parallel_tokens: int = 2
    """Tokens per step of the parallel-decoding evaluation (Table 4)."""
    thresholds: tuple[float, ...] = (0.9, 0.7, 0.5)
    """Thresholds of the threshold-decoding evaluation of No-SFT, SFT-SD and TABOM (tabom.reproduce.threshold)."""
    decode_batch: int = 64
    ablation_domain: str | None = "math"
    grid_domain: str | None = None
    sweep_domain: str | None = None
    keep: Literal["correct", "all"] = "correct"
    """Trajectories kept: verified-correct ones (the paper), or all (tests with random models)."""
    quick: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for d in self.domains:
            if d not in DOMAINS:
                raise ValueError(f"domains: unknown domain {d!r} (known: {', '.join(DOMAINS)})")
        for name in ("ablation_domain", "grid_domain", "sweep_domain"):
            value = getattr(self, name)
            if value is not None and value not in self.domains:
                raise ValueError(f"{name}: {value!r} is not one of the plan's domains {self.domains}")
        for name in ("n_train", "n_eval", "n_tds", "gen_length", "parallel_tokens", "decode_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.train_steps is not None and self.train_steps < 1:
            raise ValueError(f"train_steps: must be >= 1, got {self.train_steps}")
        if not self.seeds:
            raise ValueError("seeds: at least one seed is needed")
        if self.keep not in ("correct", "all"):
            raise ValueError(f"keep: {self.keep!r} is not one of correct, all")
        for tau in self.thresholds:
            if not 0 < tau <= 1:
                raise ValueError(f"thresholds: {tau} is not in (0, 1]")

    def families(self, domain: str) -> list[str]:
        """The domain's own (training and in-domain) task families."""
        from tabom.tasks import families_for

        return list(families_for(domain))

    def ood_families(self, domain: str) -> list[str]:
        """The other post-training domain's families, then ood_format and ood_string."""
        from tabom.tasks import families_for

        others = [f for d in DOMAINS if d != domain for f in families_for(d)]
        return others + list(families_for("ood"))

    def eval_families(self, domain: str) -> list[str]:
        """The families a domain's models are evaluated on: its own, then the out-of-domain ones."""
        return self.families(domain) + self.ood_families(domain)

    def to_json(self) -> dict[str, Any]:
        """The plan as a JSON-ready dict (``dataclasses.asdict``)."""
        return asdict(self)


def make_plan(
    quick: bool,
    *,
    model: str = "tiny",
    seeds: int | None = None,
    n_train: int | None = None,
    n_eval: int | None = None,
    n_tds: int | None = None,
    train_steps: int | None = None,
    gen_length: int = 64,
    decode_batch: int = 64,
    keep: Literal["correct", "all"] = "correct",
    domains: tuple[str, ...] | None = None,
) -> Plan:
    """The plan of one mode with the given knobs replacing its defaults.

    --quick: math only, 1 seed, 64 training prompts and 16 test problems per family, 8 TDS prompts
    per family, 50 optimizer steps per run, no grid or sweep. Full: both domains, 3 seeds, 500
    training prompts and 36 test (and val) problems per family, 16 TDS prompts per family, 150
    optimizer steps per run, and the grid and sweep on math. The full sizes are what fits the
    3-hour budget on 2 CPU cores: 48 training runs and 83 evaluations of 6 families (see
    docs/reproduce.md for the arithmetic); on a GPU raise --n-eval and --n-train.
    """
    if domains is not None and not domains:
        raise ValueError("domains: empty (give math, code or both, comma-separated)")
    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"seeds: must be in [1, {MAX_SEEDS}] (every seed trains every method again), got {seeds}")
    doms = domains or (("math",) if quick else DOMAINS)
    first = doms[0]

    def given(value: int | None, quick_default: int, full_default: int) -> int:
        # `is None`, not `or`: an explicit 0 is an error for Plan to report, never the default.
        return value if value is not None else (quick_default if quick else full_default)

    return Plan(
        model=model,
        domains=tuple(doms),
        seeds=tuple(range(given(seeds, 1, 3))),
        n_train=given(n_train, 64, 500),
        n_eval=given(n_eval, 16, 36),
        n_tds=given(n_tds, 8, 16),
        train_steps=given(train_steps, 50, 150),
        gen_length=gen_length,
        decode_batch=decode_batch,
        ablation_domain="math" if "math" in doms else first,
        grid_domain=None if quick else ("math" if "math" in doms else first),
        sweep_domain=None if quick else ("math" if "math" in doms else first),
        keep=keep,
        quick=quick,
    )
