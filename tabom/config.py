"""Typed configuration of `tabom train`: dataclasses, YAML recipes and `key=value` overrides.

    cfg = load_recipe("tabom/recipes/tiny_tabom.yaml", ["optim.lr=1e-3", "objective.margin=0.2"])
    print(to_yaml(cfg))                    # the resolved recipe (what --dry-run prints)

A recipe is a YAML mapping whose keys are the fields of :class:`TrainConfig`; nested sections
(`data`, `objective`, `lora`, `optim`) are the fields of their dataclasses. The `objective`
section holds `name` plus that objective's own fields (``tabom.objectives`` config classes),
e.g. ``objective: {name: tabom, margin: 0.1, rank_lambda: 1.0}``.

Values are type-checked against the dataclass annotations (an int is accepted for a float, a
string such as ``2e-5``, which YAML 1.1 reads as text, is accepted for a float). Errors name the
recipe file, the line of the offending key when known, and the dotted field:
``recipes/x.yaml:7: optim.lr: expected float, got str 'fast'``; a value set on the command line
is named by its override: ``override optim.lr=inf: optim.lr: must be a finite number, got inf``.
Unknown keys are errors with a close-match suggestion.

Every dataclass checks its own fields in ``__post_init__`` (types through
:func:`tabom.typed_yaml.check_fields`, then ranges: numbers finite, counts >= 1, probabilities
in [0, 1)), so a config built in Python is held to the same rules as a recipe; ``cfg.check()``
runs them again after fields were assigned (what `train` does first). Recipes are read with
:func:`tabom.typed_yaml.load_yaml` (no anchors or aliases). This module imports only the standard
library and PyYAML; objective fields are checked against ``tabom.objectives`` (torch) only in
:func:`validate_objective`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tabom.typed_yaml import (
    ConfigError,
    FieldError,
    build,
    check_fields,
    check_number,
    coerce,
    line_map,
    load_yaml,
    parse_override,
    read_text,
    show,
    where,
)
from tabom.methods import RECIPE_DIRS, compose

__all__ = ["ConfigError", "DataConfig", "LoraConfig", "ObjectiveConfig", "OptimConfig", "TrainConfig",
           "apply_overrides", "build", "load_recipe", "parse_override", "resolve_recipe_path", "to_dict",
           "to_yaml", "validate_objective"]


SEED_LIMIT = 2**32
"""Seeds lie in [0, SEED_LIMIT): the run derives its generators' seeds from them."""
MAX_BATCH = 2**20
"""Largest batch_size / grad_accum accepted (a batch is built one row index at a time)."""
MAX_GEN_LENGTH = 2**20
MAX_THREADS = 4096


def _count(key: str, value: Any, at_least: int = 1, at_most: int | None = None) -> None:
    check_number(key, value, integer=True, at_least=at_least, at_most=at_most)


def _check_model_shape(shape: dict[str, Any]) -> None:
    """`model_shape` against the tiny model's `TinyConfig`: known fields, sizes >= 1, heads that
    divide the width into even head sizes (rotary pairs) and key/value heads that divide the heads."""
    from tabom.models.tiny import TinyConfig  # torch: imported only when a shape is given

    known = {f.name: f.default for f in dataclasses.fields(TinyConfig)}
    for key, value in shape.items():
        if key not in known:
            raise FieldError(f"model_shape.{key}", f"unknown field (known: {', '.join(known)})")
        if key == "rope_theta":
            check_number(f"model_shape.{key}", value, above=0)
        else:
            _count(f"model_shape.{key}", value, 1, 2**20)
    full = {**known, **shape}
    width, heads, kv = full["hidden_size"], full["num_attention_heads"], full["num_key_value_heads"]
    if width % heads or (width // heads) % 2:
        raise FieldError("model_shape.hidden_size",
                         f"{width} is not {heads} attention heads of an even width (use a multiple of {2 * heads})")
    if heads % kv:
        raise FieldError("model_shape.num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")


def _non_empty(key: str, value: str | None) -> None:
    if value is not None and not value.strip():
        raise FieldError(key, "must not be empty")


@dataclass
class DataConfig:
    """Where the training rows come from and how long the response window is."""

    path: str | None = None
    """A JSONL file: trajectories (`format: trajectories`) or prompt/answer rows (`format: prompts`)."""
    format: Literal["trajectories", "prompts"] = "trajectories"
    """`trajectories`: self-distilled decodes (SFT-SD and the trajectory methods); `prompts`: the
    `answer` of each row is the ground-truth response (SFT-GT)."""
    task: str | None = None
    """Instead of a file: a built-in task family's split (SFT-GT on the tiny model)."""
    n: int = 2000
    """Problems drawn from `task`."""
    style: Literal["reference", "native"] = "reference"
    """Answer style drawn from `task`: `reference` is the ground-truth style."""
    split: Literal["train", "val", "test"] = "train"
    """Split of `task` to draw from."""
    seed: int = 0
    """Seed of the problems drawn from `task`."""
    gen_length: int = 256
    """Response window in tokens: answers are EOS-padded to it; trajectories must have it."""
    only_correct: bool = False
    """Keep only trajectories whose `correct` is true."""
    drop_long: bool = False
    """Drop answers that do not fit `gen_length` (counted in the log) instead of raising."""
    limit: int | None = None
    """Use only the first `limit` rows."""
    methods: list[str] | None = None
    """Keep only trajectories whose `method` is listed (the release's filter, e.g. `[entropy,
    default, credit]`); null keeps every row."""
    group_by_length: bool = False
    """Put rows of similar length in the same global batch (less padding); the batches' order
    is still drawn from (seed, epoch) (`tabom.training.sampling`)."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Types and ranges of every field; :class:`FieldError` naming the first bad one."""
        check_fields(self, "data.")
        if self.methods is not None and not self.methods:
            raise FieldError("data.methods", "must list at least one method (or be null to keep every row)")
        if (self.path is None) == (self.task is None):
            raise FieldError("data", "give exactly one of data.path (a JSONL file) or data.task (a built-in family)")
        _non_empty("data.path", self.path)
        _non_empty("data.task", self.task)
        _count("data.gen_length", self.gen_length, 2, MAX_GEN_LENGTH)
        _count("data.n", self.n, 1, 10_000_000)
        _count("data.seed", self.seed, 0, SEED_LIMIT - 1)
        if self.limit is not None:
            _count("data.limit", self.limit)


@dataclass
class ObjectiveConfig:
    """The objective's registry name and its own config fields (checked by `validate_objective`)."""

    name: str = "tabom"
    """One of nelbo, trajectory, tabom, dinfer, t3d (`tabom.objectives.OBJECTIVES`)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Fields of the objective's config dataclass (e.g. `margin`, `rank_lambda` for tabom)."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Types of `name` and `params` (the params' own checks: :func:`validate_objective`)."""
        check_fields(self, "objective.")
        _non_empty("objective.name", self.name)


@dataclass
class LoraConfig:
    """LoRA through PEFT; `enabled: false` trains every weight instead."""

    enabled: bool = True
    r: int = 16
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Types and ranges of every field; :class:`FieldError` naming the first bad one."""
        check_fields(self, "lora.")
        if self.enabled:
            _count("lora.r", self.r, 1, 65536)
        check_number("lora.alpha", self.alpha, above=0)
        check_number("lora.dropout", self.dropout, at_least=0, below=1)
        if self.enabled and not self.target_modules:
            raise FieldError("lora.target_modules", "must name at least one module")
        for i, name in enumerate(self.target_modules):
            _non_empty(f"lora.target_modules[{i}]", name)


@dataclass
class OptimConfig:
    """AdamW with a warm-up then cosine (or constant) learning rate and gradient clipping."""

    lr: float = 2e-5
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = 50
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.0
    """Cosine decays to `lr * min_lr_ratio`."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Types and ranges of every field; :class:`FieldError` naming the first bad one."""
        check_fields(self, "optim.")
        check_number("optim.lr", self.lr, above=0)
        if len(self.betas) != 2:
            raise FieldError("optim.betas", f"expected two numbers in [0, 1), got {self.betas}")
        for i, beta in enumerate(self.betas):
            check_number(f"optim.betas[{i}]", beta, at_least=0, below=1)
        check_number("optim.weight_decay", self.weight_decay, at_least=0)
        check_number("optim.eps", self.eps, above=0)
        _count("optim.warmup_steps", self.warmup_steps, 0)
        check_number("optim.min_lr_ratio", self.min_lr_ratio, at_least=0, at_most=1)
        check_number("optim.max_grad_norm", self.max_grad_norm, at_least=0)


@dataclass
class TrainConfig:
    """Everything `tabom train` needs; `train(cfg)` in `tabom.training.trainer` runs it."""

    model: str = "tiny"
    """`tiny` (the shipped checkpoint), `tiny-random` (a fresh random tiny model) or a local folder."""
    model_shape: dict[str, Any] = field(default_factory=dict)
    """`build_tiny` overrides for `tiny-random` (hidden_size, num_hidden_layers, ...)."""
    dtype: str = "auto"
    """Weight dtype: auto (bfloat16 on CUDA, float32 on CPU), bfloat16, float32."""
    out: str = "runs/train"
    """The run folder: checkpoints, metrics.jsonl, recipe.yaml."""
    seed: int = 0
    epochs: int = 5
    max_steps: int | None = None
    """Optimizer steps; when set it replaces `epochs` as the length of the run."""
    batch_size: int = 4
    """Rows per device per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    save_every: int = 0
    """Also checkpoint every this many optimizer steps (0: only after each epoch)."""
    keep_step_checkpoints: int = 2
    """Step checkpoints kept (older ones are deleted); epoch checkpoints are all kept."""
    log_every: int = 1
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Autocast: auto is bf16 on a GPU that has it, fp32 elsewhere (CPU included)."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward instead of keeping them
    (less memory, about a third more compute; the same losses and weights)."""
    parallel: Literal["ddp", "fsdp"] = "ddp"
    """`ddp`: every process holds all weights, gradients and optimizer state; `fsdp`: FSDP2 shards
    them per decoder layer over the processes (`tabom.training.parallel`; one process: unsharded)."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Extra loggers: `tensorboard` (used when installed: `pip install tabom[tensorboard]`),
    `wandb` (must be installed)."""
    wandb_project: str = "tabom"
    """W&B project of the run (with `report_to: [wandb]`)."""
    wandb_entity: str | None = None
    """W&B entity (user or team); null: the logged-in default."""
    run_name: str | None = None
    """Name of the run in W&B and TensorBoard; null: the `out` folder's name."""
    threads: int = 0
    """torch CPU threads (0: torch's default)."""
    paper_global_batch: int | None = None
    """The global batch the recipe's source used (the paper: 8 GPUs x 4 = 32); the trainer warns
    when processes x batch_size x grad_accum differs."""
    data: DataConfig = field(default_factory=lambda: DataConfig(task="math_chain"))
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        self._check_own()

    def check(self) -> None:
        """Every section's checks and this one's (run them after assigning fields by hand)."""
        for section in (self.data, self.objective, self.lora, self.optim):
            if hasattr(section, "check"):
                section.check()
        self._check_own()

    def _check_own(self) -> None:
        check_fields(self)
        _non_empty("model", self.model)
        _non_empty("out", self.out)
        _non_empty("wandb_project", self.wandb_project)
        _non_empty("wandb_entity", self.wandb_entity)
        _non_empty("run_name", self.run_name)
        if self.model_shape:
            _check_model_shape(self.model_shape)
        _count("seed", self.seed, 0, SEED_LIMIT - 1)
        _count("epochs", self.epochs)
        if self.max_steps is not None:
            _count("max_steps", self.max_steps)
        _count("batch_size", self.batch_size, 1, MAX_BATCH)
        _count("grad_accum", self.grad_accum, 1, MAX_BATCH)
        _count("save_every", self.save_every, 0)
        _count("keep_step_checkpoints", self.keep_step_checkpoints)
        _count("log_every", self.log_every)
        _count("threads", self.threads, 0, MAX_THREADS)
        if self.paper_global_batch is not None:
            _count("paper_global_batch", self.paper_global_batch)
        for sink in self.report_to:
            if sink not in ("tensorboard", "wandb"):
                raise FieldError("report_to", f"unknown sink {sink!r} (tensorboard, wandb)")
        if self.dtype not in ("auto", "bfloat16", "bf16", "float32", "fp32", "float16", "fp16"):
            raise FieldError("dtype", f"unknown {self.dtype!r} (auto, bfloat16, float32)")


# --------------------------------------------------------------------------- recipes

def resolve_recipe_path(recipe: str | Path) -> Path:
    """A recipe file path, or a bare name looked up in :data:`RECIPE_DIRS` (`tiny_tabom`)."""
    path = Path(recipe).expanduser()
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a recipe YAML file (or a built-in recipe's name)")
    if path.exists():
        return path
    if path.suffix == "" and len(path.parts) == 1:
        for folder in RECIPE_DIRS:
            candidate = folder / f"{path.name}.yaml"
            if candidate.exists():
                return candidate
    names = sorted({p.stem for d in RECIPE_DIRS if d.is_dir() for p in d.glob("*.yaml")})
    raise FileNotFoundError(f"{recipe}: no such recipe file (built-in recipes: {', '.join(names)})")


def _flatten_objective(raw: dict[str, Any]) -> dict[str, Any]:
    """`objective: {name: x, k: v}` -> `{name: x, params: {k: v}}` (an explicit `params` is kept)."""
    section = raw.get("objective")
    if isinstance(section, dict):
        params = dict(section.get("params") or {})
        params.update({k: v for k, v in section.items() if k not in ("name", "params")})
        raw["objective"] = {"name": section.get("name", "tabom"), "params": params}
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str],
                    lines: dict[str, int | str] | None = None) -> dict[str, Any]:
    """Set dotted keys in the nested mapping; `objective.X` goes to the objective's params.

    When ``lines`` (key -> recipe line) is given, each overridden key (and every key under it)
    is mapped to ``override KEY=VALUE`` instead, so errors name the override, not the recipe.
    """
    for item in overrides:
        key, value = parse_override(item)
        if lines is not None:
            for known in [k for k in lines if k == key or k.startswith(f"{key}.")]:
                del lines[known]
            lines[key] = f"override {item}"
        parts = key.split(".")
        if parts[0] == "objective" and len(parts) == 2 and parts[1] not in ("name", "params"):
            parts = ["objective", "params", parts[1]]
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def load_recipe(recipe: str | Path | None, overrides: list[str] | None = None,
                check_objective: bool = True) -> TrainConfig:
    """Read a YAML recipe (or start from the defaults when None), apply overrides, build and check.

    Raises :class:`ConfigError` (a `ValueError`) naming file, line and dotted key.
    """
    raw: dict[str, Any] = {}
    source, lines = "<defaults>", {}
    if recipe is not None:
        path = resolve_recipe_path(recipe)
        text = read_text(path, "recipe YAML file")
        raw = load_yaml(text, str(path)) or {}
        source, lines = str(path), dict(line_map(text))
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of keys, got {show(raw)}")
    raw = _flatten_objective(raw)
    raw, overrides = compose(raw, list(overrides or []), lines, path if recipe is not None else None)
    if overrides:
        raw = apply_overrides(raw, overrides, lines)
        source = f"{source} (with overrides)"
    if "data" not in raw:
        raise ConfigError(f"{source}: data: required section is missing (data.path or data.task)")
    cfg = build(TrainConfig, raw, source=source, lines=lines)
    if check_objective:
        validate_objective(cfg.objective, data=cfg.data, source=source, lines=lines)
    return cfg


def validate_objective(section: ObjectiveConfig, *, data: DataConfig | None = None, source: str = "<recipe>",
                       lines: dict[str, int | str] | None = None) -> Any:
    """Type-check `objective.params` against the objective's dataclass; returns that config.

    With `data`, also what the objective's registry entry says it needs of the data
    (`needs_trajectories`: a trajectory JSONL, not prompts or a task family)."""
    from tabom.objectives import get_objective

    lines = lines or {}
    try:
        obj = get_objective(section.name)
    except ValueError as exc:
        raise ConfigError(f"{where(source, lines, 'objective.name')}: objective.name: {exc}") from None

    def err(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{where(source, lines, key)}: {key}: {msg}")

    if data is not None and obj.needs_trajectories and (data.task is not None or data.format != "trajectories"):
        raise err("data", f"objective {section.name!r} needs trajectories "
                  "(data.path to a trajectory JSONL with data.format: trajectories)")

    hints = typing.get_type_hints(obj.config_cls)
    checked: dict[str, Any] = {}
    for name, value in section.params.items():
        if name not in hints:
            close = difflib.get_close_matches(name, list(hints), n=1)
            hint = f" (did you mean objective.{close[0]}?)" if close else f" (known: {', '.join(hints)})"
            raise err(f"objective.{name}", f"unknown field of objective {section.name!r}{hint}")
        checked[name] = coerce(value, hints[name], f"objective.{name}", err)
    try:
        cfg = obj.config(**checked)
    except ValueError as exc:
        # the objectives' own checks read "TabomConfig: rank_lambda: must be >= 0, got -1"
        match = re.match(r"^\w+: (\w+): (.*)$", str(exc), re.S)
        if match and match.group(1) in hints:
            raise err(f"objective.{match.group(1)}", match.group(2)) from None
        raise ConfigError(f"{source}: objective: {exc}") from None
    section.params = checked
    return cfg


# --------------------------------------------------------------------------- output
def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The resolved recipe as a plain mapping, objective params flattened back into `objective`."""
    out = dataclasses.asdict(cfg)
    objective = out.pop("objective")
    out["objective"] = {"name": objective["name"], **objective["params"]}
    return out


def to_yaml(cfg: TrainConfig) -> str:
    """The resolved recipe as YAML (loadable again with :func:`load_recipe`)."""
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)
