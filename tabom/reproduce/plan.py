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
from functools import lru_cache
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
POWERED_METHODS: tuple[Method, ...] = (NO_SFT, SFT_SD, TABOM)
"""The methods of the powered comparison (TABOM against SFT-SD and No-SFT): every seed, and their
in-domain full decoding on ``Plan.n_eval_powered`` test problems per family; the other methods
train ``Plan.secondary_seeds`` seeds and are tested on the common ``n_eval`` problems."""
POWERED_KEYS: frozenset[str] = frozenset(m.key for m in POWERED_METHODS)


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


PAPER_W = 32
"""The paper's window W (Section 4: fixed to 32 over 256-token trajectories)."""

WINDOW_FIELDS: dict[str, tuple[str, ...]] = {
    "tiny_tabom": ("ce_window", "rank_window"), "tiny_trajectory": ("ce_window",),
    "tiny_dinfer": ("max_span",), "tiny_t3d": ("path_window",),
}
"""The objective fields of each tiny recipe that the paper sets to 32 (its W, dInfer's span, T3D's
path window): all scaled alike by :func:`map_window` to the domain's canvas."""


def sweep_methods(gen_length: int, windows: tuple[int | None, ...] = PAPER_WINDOWS) -> list[tuple[str, int, Method]]:
    """Table 9: (paper's W as text, tiny W, method); CE window M and ranking window W set alike."""
    out = []
    for paper_w in windows:
        w = map_window(paper_w, gen_length)
        run = TrainRun("tiny_tabom", "sd", (("ce_window", w), ("rank_window", w)))
        name = "whole" if paper_w is None else str(paper_w)
        out.append((name, w, Method(f"TABOM W={w}", run)))
    return out


DEFAULT_CANVASES: dict[str, int] = {"math": 32, "code": 40, "ood": 64}
"""Canvas per domain of the default and quick plans. The trained domains' canvases are fitted to
their native answers (math up to 30 characters, code_trace 39; code_func up to 51, 15% of its test
answers over 39, which no method can write on 40 tokens), so that most of each training window is
content: measured 0.71-0.85 on math at 32 tokens, 0.65-0.70 on code at 40, 0.54-0.60 at 48
(docs/benchmarks.md). The ood families are only evaluated, never trained on: they keep the tiny
model's own 64 (on 32 tokens the base model's ood_format fell from 33-38% to 0%)."""
GT_GEN_LENGTH = 96
"""SFT-GT's canvas: its reference answers run up to 93 characters in every split of the four trained
families, so 96 tokens hold each of them and its EOS (128, the tiny_sft_gt recipe's, costs 1.5x the
decoding for nothing but padding)."""

MAX_SEEDS = 100
"""Most training seeds per method `make_plan` takes (each seed of the full plan takes about 8 min per domain on 2 CPU cores)."""


@lru_cache(maxsize=None)
def _available(family: str, split: str, n: int) -> int:
    """``min(n, problems in the family's split)`` (drawn once per arguments)."""
    from tabom.tasks import get_family

    return len(get_family(family).problems(split, n, seed=0, at_most=True))


@dataclass
class Plan:
    """Everything a reproduction runs; :func:`make_plan` fills the per-mode defaults."""

    model: str = "tiny"
    domains: tuple[str, ...] = DOMAINS
    seeds: tuple[int, ...] = (0, 1, 2)
    n_train: int = 500
    """Training prompts per family (a domain has two families)."""
    n_eval: int = 36
    """Test problems per in-domain family (at most the family's test split; math_linear has 239)."""
    n_eval_ood: int | None = None
    """Test problems per out-of-domain family (None: ``n_eval``)."""
    n_eval_powered: int | None = None
    """In-domain test problems per family of the powered comparison: No-SFT, SFT-SD and TABOM under
    full decoding (:data:`POWERED_METHODS`); None: ``n_eval``. The first ``n_eval`` of them are the
    problems every method is tested on (the same draw, so the main tables compare like with like)."""
    domain_seeds: dict[str, int] = field(default_factory=dict)
    """Seeds of the powered comparison's trained methods (SFT-SD, TABOM) in a domain, instead of
    ``len(seeds)`` (seeds 0..n-1): math's powered test set is capped by math_linear's 239 problems,
    so it needs more seeds than code for the same interval."""
    secondary_seeds: int | None = None
    """Seeds of the trained methods outside the powered comparison (SFT-GT, dInfer, T3D and the
    ablation's own rows): the first this many of ``seeds``; None: all."""
    n_tds: int = 16
    """TDS prompts per in-domain family (the paper uses 64 trajectories; 2 x 16 here fits the CPU budget)."""
    train_steps: int | None = None
    """Optimizer steps of every run alike; None keeps the recipes' epochs."""
    gen_length: int = 64
    """Response length (canvas) of trajectories and evaluation for a domain without an entry in
    ``canvases`` (the tiny model's default 64)."""
    canvases: dict[str, int] = field(default_factory=dict)
    """Canvas per task domain (``math``, ``code``, ``ood``): a domain's trajectories and the
    evaluation of its families decode this many response tokens (fitted to the native answers, so
    that the training windows hold content rather than EOS padding; docs/reproduce.md)."""
    gt_gen_length: int | None = None
    """SFT-GT's canvas for training and evaluation (its reference answers are longer than the native
    ones); None: SFT-GT is evaluated on the families' canvases and trained on its recipe's."""
    scale_windows: bool = True
    """Every window the paper sets to 32 (TABOM's W and M, dInfer's span, T3D's path window) is
    ``round(32 * canvas / 256)`` of the domain's canvas (:func:`map_window`)."""
    epochs: int | None = None
    """When set: every run trains this many epochs (no step cap), each ``epoch_k`` is evaluated on
    the val split of the domain's own families (``n_val`` problems each, full decoding), and test is
    evaluated at the best (the paper's best of 5 epochs, chosen on val instead of test)."""
    n_val: int = 50
    """Val problems per in-domain family for the choice of the epoch."""
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
        for name in ("n_train", "n_eval", "n_tds", "gen_length", "parallel_tokens", "decode_batch", "n_val"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.n_eval_powered is not None and self.n_eval_powered < self.n_eval:
            raise ValueError(f"n_eval_powered: must be >= n_eval ({self.n_eval}), got {self.n_eval_powered}")
        for dom, n in self.domain_seeds.items():
            if dom not in self.domains or not 1 <= n <= MAX_SEEDS:
                raise ValueError(f"domain_seeds: {dom}={n}: a domain of the plan and 1 to {MAX_SEEDS} seeds")
        if self.secondary_seeds is not None and not 1 <= self.secondary_seeds <= len(self.seeds):
            raise ValueError(f"secondary_seeds: must be in [1, {len(self.seeds)}], got {self.secondary_seeds}")
        if self.n_eval_ood is not None and self.n_eval_ood < 1:
            raise ValueError(f"n_eval_ood: must be >= 1, got {self.n_eval_ood}")
        for dom, g in self.canvases.items():
            if dom not in (*DOMAINS, "ood") or g < 2:
                raise ValueError(f"canvases: {dom}={g}: a domain of math, code, ood and at least 2 tokens")
        if self.gt_gen_length is not None and self.gt_gen_length < 2:
            raise ValueError(f"gt_gen_length: must be >= 2, got {self.gt_gen_length}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs: must be >= 1, got {self.epochs}")
        if self.train_steps is not None and self.train_steps < 1:
            raise ValueError(f"train_steps: must be >= 1, got {self.train_steps}")
        if not self.seeds:
            raise ValueError("seeds: at least one seed is needed")
        if self.keep not in ("correct", "all"):
            raise ValueError(f"keep: {self.keep!r} is not one of correct, all")
        for tau in self.thresholds:
            if not 0 < tau <= 1:
                raise ValueError(f"thresholds: {tau} is not in (0, 1]")

    def powered_seeds(self, domain: str | None) -> tuple[int, ...]:
        """Seeds of SFT-SD and TABOM in ``domain``: ``domain_seeds``' count there, else ``seeds``."""
        if domain is not None and domain in self.domain_seeds:
            return tuple(range(self.domain_seeds[domain]))
        return self.seeds

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

    def canvas(self, domain: str) -> int:
        """Response tokens of a task domain's trajectories and evaluations."""
        return self.canvases.get(domain, self.gen_length)

    def family_canvas(self, family: str) -> int:
        """Response tokens a family is evaluated with: its domain's canvas."""
        from tabom.tasks import get_family

        return self.canvas(get_family(family).domain)

    def window(self, domain: str) -> int:
        """The paper's W = 32 mapped to the domain's canvas (``round(32 * canvas / 256)``)."""
        return map_window(PAPER_W, self.canvas(domain))

    def objective_defaults(self, domain: str | None, recipe: str) -> dict[str, Any]:
        """The objective fields the plan sets for a recipe in a domain (the scaled windows), ``{}``
        when windows are not scaled or no domain is given."""
        if domain is None or not self.scale_windows:
            return {}
        return {name: self.window(domain) for name in WINDOW_FIELDS.get(recipe, ())}

    def eval_limit(self, domain: str, family: str, split: str = "test", powered: bool = False) -> int:
        """Problems of ``family`` evaluated for a ``domain``-trained model: ``n_eval`` in-domain on test
        (``n_eval_powered`` with ``powered``; ``n_val`` on val: the grid and the sweep), ``n_eval_ood``
        (else ``n_eval``) out of domain, at most what the family's split holds."""
        if family in self.families(domain):
            n = self.n_val if split == "val" else self.n_eval
            if powered and split == "test" and self.n_eval_powered is not None:
                n = self.n_eval_powered
        else:
            n = self.n_eval if self.n_eval_ood is None else self.n_eval_ood
        return _available(family, split, n)

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
    gen_length: int | None = None,
    decode_batch: int = 64,
    keep: Literal["correct", "all"] = "correct",
    domains: tuple[str, ...] | None = None,
    epochs: int | None = None,
    n_val: int | None = None,
    n_eval_ood: int | None = None,
    n_eval_powered: int | None = None,
    secondary_seeds: int | None = None,
    domain_seeds: dict[str, int] | None = None,
) -> Plan:
    """The plan of one mode with the given knobs replacing its defaults.

    Both modes: per-domain canvases fitted to the native answers (math 32, code 40 tokens; the
    never-trained ood families on the model's own 64; SFT-GT 96), windows scaled from the paper's 32
    to the canvas, every run trained ``epochs`` epochs with each epoch evaluated on ``n_val`` val
    problems per in-domain family and test taken at the best. --quick: math only, 1 seed, 64
    training prompts per family, 16 test problems per in-domain and per OOD family, 3 epochs, 8 TDS
    prompts per family, no grid or sweep: a smoke test, not powered. Full: both domains, 400
    training prompts per family, 5 epochs, 16 val problems per family, 16 TDS prompts, the grid and
    sweep on math (val split); the powered comparison (No-SFT, SFT-SD, TABOM: 3 seeds, 5 on math, in-domain
    full decoding on 600 test problems per family, math_linear's whole test split of 239) and every
    other table on the common first 64 in-domain and 16 OOD test problems per family, SFT-GT, dInfer,
    T3D and the ablation's own rows on 1 seed. ``gen_length`` replaces the canvases with one length
    for every domain and SFT-GT. The sizes and their measured cost are in docs/reproduce.md and
    docs/benchmarks.md.
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
        n_train=given(n_train, 64, 400),
        n_eval=given(n_eval, 16, 64),
        # out-of-domain and val sizes default to the mode's, never above a smaller --n-eval
        n_eval_ood=n_eval_ood if n_eval_ood is not None else min(given(n_eval, 16, 64), 16),
        n_eval_powered=n_eval_powered if n_eval_powered is not None or quick else max(600, given(n_eval, 16, 64)),
        secondary_seeds=secondary_seeds if secondary_seeds is not None or quick else 1,
        # math's powered set is capped by math_linear's 239 test problems: 5 seeds there, 3 elsewhere
        domain_seeds=dict(domain_seeds) if domain_seeds is not None else (
            {"math": 5} if not quick and seeds is None and "math" in doms else {}),
        n_tds=given(n_tds, 8, 16),
        train_steps=train_steps,
        epochs=given(epochs, 3, 5),
        n_val=n_val if n_val is not None else min(given(n_eval, 16, 64), 16),
        gen_length=64 if gen_length is None else gen_length,
        canvases={} if gen_length is not None else dict(DEFAULT_CANVASES),
        gt_gen_length=None if gen_length is not None else GT_GEN_LENGTH,
        decode_batch=decode_batch,
        ablation_domain="math" if "math" in doms else first,
        grid_domain=None if quick else ("math" if "math" in doms else first),
        sweep_domain=None if quick else ("math" if "math" in doms else first),
        keep=keep,
        quick=quick,
    )
