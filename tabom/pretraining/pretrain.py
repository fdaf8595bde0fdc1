"""`tabom pretrain`: train the built-in tiny DLM from scratch with the masked-diffusion objective.

The corpus is a mixture of every built-in task family's training split, answers written in the
families' *native* style (the ground-truth style is kept apart for SFT-GT). The objective is
LLaDA's SFT recipe (`tabom.objectives.nelbo`): t ~ U(0, 1), each response token masked with
p_mask = (1 - eps) t + eps, the prompt never, CE / p_mask averaged over response tokens.
The response window is `gen_length` tokens: the answer, then EOS padding (trained on, as LLaDA
does, so the model learns to end).

The shipped model (CPU, 2 threads): 14,000 steps, the same run extended to 24,000 (`--resume`
with a larger `--steps`, a warm restart), both on code_func's first 59 templates, then a third
stage on the default tasks (docs/tiny_model.md):

    tabom pretrain --out runs/tiny --steps 14000 --precision bf16 --save-every 1000 \
        --tasks tabom/assets/tasks/tiny_stages_1_2.yaml
    tabom pretrain --out runs/tiny --steps 24000 --precision bf16 --save-every 1000 --resume \
        --tasks tabom/assets/tasks/tiny_stages_1_2.yaml
    tabom pretrain --init runs/tiny --out runs/tiny_stage3 --steps 3000 --lr 4e-4 --precision bf16 \
        --save-every 500
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from tabom.config import MAX_THREADS, SEED_LIMIT
from tabom.config import _check_model_shape as check_model_shape
from tabom.models.diffusion_lm import DiffusionLM


@dataclass
class PretrainConfig:
    """Everything that determines the shipped tiny checkpoint (re-running reproduces it)."""

    out: str = "runs/pretrain"
    steps: int = 7000
    batch_size: int = 48
    lr: float = 1e-3
    """Peak learning rate. 3e-3 collapsed the attention of the tiny model (docs/tiny_model.md)."""
    warmup: int = 100
    weight_decay: float = 0.01
    gen_length: int = 64
    n_per_family: int = 7000
    seed: int = 0
    drill: int = 0
    """Arithmetic drill pairs ("13-6=" -> "7", facts taken from the training answers) added to
    the mixture (`tabom.tasks.drill`): the answers' chains let a masked result be copied from its
    twin, so without a drill the model learns to copy, not to compute (docs/tiny_model.md)."""
    drill_lines: int = 1
    """Facts per drill pair: 1, a bare fact ("13-6=" -> "7"); k > 1, a sheet of k facts written
    out in the answer window ("Work out:" -> "13-6=7\n4*3=12\n..."), where the families' working
    lines sit (`tabom.tasks.drill.arithmetic_drill`)."""
    drill_only: bool = False
    """Train on the `drill` pairs alone (their facts still come from the families' training
    answers, so the drill teaches exactly the arithmetic the families use): a first curriculum
    stage that learns the facts in isolation, where nothing can be copied (docs/tiny_model.md)."""
    group_numbers: bool = False
    """Mask every occurrence of a number in an answer together (`number_groups`): a masked result
    then has no visible twin to copy from, so the model must compute it. Off by default (not
    LLaDA's recipe; docs/tiny_model.md has what it was measured to do)."""
    threads: int = 2
    """torch CPU threads (0: torch's default)."""
    device: str = "cpu"
    """Where to train ("cpu", "cuda", "cuda:1", ...). The data order and the masking draws come
    from CPU generators on every device; only the arithmetic differs, so a GPU run reproduces a
    GPU run of the same kind up to floating-point non-determinism, not a CPU run bit for bit."""
    precision: str = "fp32"
    """"fp32"; "bf16" (autocast of the forward and loss, weights and optimizer kept in float32:
    1.4x faster steps on this project's AVX512-BF16 CPU, docs/benchmarks.md; the shipped checkpoint
    was trained so); "auto": bf16 on a CUDA device that supports it, else fp32. For the tiny shape
    on an H200, bf16 was 2.8x *slower* than fp32 (0.082 against 0.029 s a step: the model is
    launch-bound and autocast adds casts), so use fp32 there; bf16 pays off for larger models."""
    save_every: int = 0
    """Every k steps save a snapshot to `out/step_<k>` and the resume state to `out/resume`
    (0: only the final model)."""
    model: dict = field(default_factory=dict)
    """Overrides of `tabom.models.tiny.TinyConfig` (hidden_size, num_hidden_layers, ...)."""
    tasks: dict = field(default_factory=dict)
    """Constructor knobs per task family (`{"math_linear": {"x_range": [0, 20]}}`, as in
    `load_task_options`); empty: every family's defaults (the shipped checkpoint's last stage's). The harder
    ranges of before 2026-11-30 are kept in `tabom/assets/tasks/before_2026-11-30.yaml`."""
    init: str | None = None
    """Start from this tiny checkpoint's weights (a second stage of training) instead of a fresh
    model of seed `seed`; the optimizer, data order and schedule start anew."""

    def __post_init__(self) -> None:
        for name, least in (("steps", 1), ("batch_size", 1), ("gen_length", 2), ("n_per_family", 1),
                            ("warmup", 0), ("drill", 0), ("drill_lines", 1), ("threads", 0), ("save_every", 0)):
            _check_int(name, getattr(self, name), least)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr >= 0):
            raise ValueError(f"lr: must be a finite number >= 0, got {self.lr!r}")  # 0: weights kept
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"weight_decay: must be a finite number >= 0, got {self.weight_decay!r}")
        if not 0 <= self.seed < SEED_LIMIT or isinstance(self.seed, bool):
            raise ValueError(f"seed: must be an integer in [0, 2**32), got {self.seed!r}")
        if self.threads > MAX_THREADS:
            raise ValueError(f"threads: at most {MAX_THREADS}, got {self.threads}")
        check_model_shape(self.model)  # the recipes' model_shape check: the same TinyConfig overrides
        if self.init is not None and self.model:
            raise ValueError("init: the shape comes from the checkpoint; give init or model overrides, not both")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"precision: expected fp32, bf16 or auto, got {self.precision!r}")
        if self.drill_only and self.drill == 0:
            raise ValueError("drill_only: needs drill > 0 (the number of drill pairs to train on)")


def _check_int(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name}: must be an integer >= {least}, got {value!r}")


def response_ids(model: DiffusionLM, text: str, gen_length: int) -> list[int]:
    """Answer text -> exactly gen_length ids: the answer, then EOS padding (at least one EOS)."""
    ids = list(model.tokenizer.encode(text, add_special_tokens=False))
    if len(ids) >= gen_length:
        raise ValueError(f"answer of {len(ids)} tokens does not fit gen_length={gen_length}: {text!r}")
    return ids + [model.eos_token_id] * (gen_length - len(ids))


def training_pairs(model: DiffusionLM, cfg: PretrainConfig) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, response ids of gen_length) for every family's training problems (their
    native answers; left out with `cfg.drill_only`), then `cfg.drill` arithmetic drill pairs drawn
    from those answers."""
    from tabom.tasks import mixture
    from tabom.tasks.drill import arithmetic_drill

    options = {name: family_kwargs(knobs) for name, knobs in cfg.tasks.items()}
    problems = mixture("train", cfg.n_per_family, seed=cfg.seed, options=options, cycle=True)
    texts = [] if cfg.drill_only else [(p.prompt, p.native) for p in problems]
    texts += arithmetic_drill([p.native for p in problems], cfg.drill, cfg.seed, lines=cfg.drill_lines,
                              max_chars=cfg.gen_length - 1)
    return [(model.encode_prompt(q), response_ids(model, a, cfg.gen_length)) for q, a in texts]


def family_kwargs(knobs: dict) -> dict:
    """YAML/JSON knobs -> constructor arguments: lists become the tuples the families take."""
    return {k: _as_tuple(v) for k, v in knobs.items()}


def load_task_options(path: str | Path) -> dict[str, dict]:
    """A YAML file of task-family knobs -> `PretrainConfig.tasks`, checked by building each family.

        math_chain: {max_value: 99, start_range: [2, 20]}
        code_trace: {use_floordiv: true}

    Raises `ValueError` naming the file, the line and the family for an unknown family, a knob the
    family does not take, or a value it rejects.
    """
    import yaml

    from tabom.tasks.registry import get_family
    from tabom.typed_yaml import line_map, load_yaml

    path = Path(path)
    text = path.read_text()
    try:
        data = load_yaml(text, str(path))  # no anchors/aliases: a tiny file cannot expand to gigabytes
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of family name -> knobs, got {type(data).__name__}")
    lines = line_map(text)
    for name, knobs in data.items():
        at = f"{path}:{lines.get(str(name), '?')}: {name}"
        if not isinstance(knobs, dict):
            raise ValueError(f"{at}: expected a mapping of knob -> value, got {knobs!r}")
        try:
            get_family(str(name), **family_kwargs(knobs))
        except ValueError as err:
            raise ValueError(f"{at}: {err}") from err
    return {str(name): dict(knobs) for name, knobs in data.items()}


def collate(
    model: DiffusionLM, pairs: list[tuple[list[int], list[int]]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(prompt ids, response ids) pairs -> input_ids (B, L), attention_mask (B, L), response_mask (B, L).

    Prompts are left-padded so every response sits at the right end, as in decoding.
    """
    width = max(len(p) for p, _ in pairs)
    rows, attn, resp = [], [], []
    for prompt, answer in pairs:
        pad = width - len(prompt)
        rows.append([model.pad_token_id] * pad + prompt + answer)
        attn.append([False] * pad + [True] * (len(prompt) + len(answer)))
        resp.append([False] * (pad + len(prompt)) + [True] * len(answer))
    return torch.tensor(rows), torch.tensor(attn), torch.tensor(resp)


def number_groups(ids: list[int], digit_ids: frozenset[int]) -> list[int]:
    """Per token: the group of the number it belongs to, -1 for tokens outside numbers.

    A number is a maximal run of digit tokens; runs spelling the same value share a group, so
    ``7+5=12 / 12-3=9 / #### 9`` puts both ``12`` and both ``9`` in one group each. Groups are
    numbered 0, 1, ... in order of first appearance.
    """
    groups: list[int] = []
    seen: dict[tuple[int, ...], int] = {}
    for is_digit, tokens in itertools.groupby(ids, key=lambda token: token in digit_ids):
        run = tuple(tokens)
        gid = seen.setdefault(run, len(seen)) if is_digit else -1
        groups += [gid] * len(run)
    return groups


def digit_token_ids(model: DiffusionLM) -> frozenset[int]:
    """The ids of the single-character tokens ``0``..``9`` (the tiny model's char tokenizer)."""
    ids = [model.tokenizer.encode(d, add_special_tokens=False) for d in "0123456789"]
    if any(len(i) != 1 for i in ids):
        raise ValueError("group_numbers: needs a tokenizer with one token per digit (the tiny model's)")
    return frozenset(i[0] for i in ids)


def collate_groups(pairs: list[tuple[list[int], list[int]]], answer_groups: list[list[int]]) -> torch.Tensor:
    """Number groups (B, L) long in `collate`'s layout: -1 on prompts and padding, each response's
    `number_groups` (``answer_groups[i]`` for ``pairs[i]``, computed once per example) at the
    right end (every response has the same length)."""
    width = max(len(p) for p, _ in pairs)
    return torch.tensor([[-1] * width + groups for groups in answer_groups])


def bucketed_order(lengths: list[int], batch_size: int, rng: random.Random, chunk: int = 16) -> list[int]:
    """One epoch's example order whose consecutive runs of `batch_size` have similar lengths.

    Shuffle, cut into chunks of `chunk` batches, sort each chunk by length, cut it into batches and
    shuffle the batches: every example once, batches in random order, little left padding (about
    a third less compute per step than random batches on the task mixture). Batches are taken from
    the end of the list (`list.pop`), so the list is the batches reversed, flattened.
    """
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    batches: list[list[int]] = []
    span = batch_size * chunk
    for start in range(0, len(idx), span):
        part = sorted(idx[start:start + span], key=lambda i: lengths[i])
        batches.extend(part[k:k + batch_size] for k in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return [i for b in reversed(batches) for i in reversed(b)]


RESUME_DIR = "resume"


def save_resume_state(out: Path, model: DiffusionLM, opt: torch.optim.Optimizer, step: int,
                      order: list[int], rng: random.Random, gen: torch.Generator) -> None:
    """Write everything a resumed run needs to `out/resume`, atomically (tmp folder + rename)."""
    from tabom.models.loading import save

    tmp, final = out / (RESUME_DIR + ".tmp"), out / RESUME_DIR
    shutil.rmtree(tmp, ignore_errors=True)
    save(model, tmp)
    state = {"step": step, "optimizer": opt.state_dict(), "order": torch.tensor(order, dtype=torch.long),
             "python_rng": rng.getstate(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state()}
    # Serialised in memory, written by Python: a full disk is then an OSError naming state.pt
    # (torch.save to a path reports it as "RuntimeError: [enforce fail ...] unexpected pos").
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (tmp / "state.pt").write_bytes(buffer.getvalue())
    (tmp / "COMPLETE").write_text(str(step))
    old = out / (RESUME_DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def load_resume_state(out: Path, model: DiffusionLM, opt: torch.optim.Optimizer,
                      rng: random.Random, gen: torch.Generator) -> tuple[int, list[int]]:
    """Restore weights, optimizer and RNGs from `out/resume`; returns (next step, data order)."""
    from safetensors.torch import load_file

    folder = out / RESUME_DIR
    if not (folder / "COMPLETE").exists():
        raise FileNotFoundError(f"{folder}: no complete resume state (run with --save-every to make one)")
    try:
        model.backbone.load_state_dict(load_file(str(folder / "model.safetensors")))
    except RuntimeError as exc:
        raise ValueError(f"{folder / 'model.safetensors'}: weights do not match the model: {exc}") from None
    # map_location: a run saved on a GPU resumes on a CPU too (the optimizer moves its state to the
    # parameters' device when loading it).
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    opt.load_state_dict(state["optimizer"])
    rng.setstate(_as_tuple(state["python_rng"]))
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), state["order"].tolist()


def _as_tuple(value: object) -> object:
    """random.setstate wants tuples all the way down (torch.save may hand lists back)."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


RUN_FILES = ("pretrain_log.jsonl", "pretrain_config.json", "model.safetensors", RESUME_DIR)
"""What a folder holds once `pretrain` has run in it (any one of them)."""


def check_fresh_out(out: Path) -> None:
    """Refuse to start a fresh run in a folder that holds a run already (its log and weights
    would be appended to and replaced): FileExistsError saying to pass --resume or another --out.
    A file where the folder should be is refused too."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder; choose another --out")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise FileExistsError(f"{out}: already holds a pretraining run ({', '.join(found)}); pass --resume "
                              "to continue or extend it, or choose another --out")


def _start_model(cfg: PretrainConfig) -> DiffusionLM:
    """The model to pre-train on `cfg.device`: a fresh tiny model, or the tiny checkpoint `cfg.init`."""
    from tabom.models.tiny import build_tiny

    if cfg.init is not None:
        from tabom.models.loading import load

        model = load(cfg.init, device="cpu", dtype=torch.float32)
        if model.family != "tiny":
            raise ValueError(f"{cfg.init}: init: not a tiny checkpoint (family {model.family!r})")
    else:
        model = build_tiny(seed=cfg.seed, **cfg.model)
    model.backbone.to(cfg.device)
    return model


def _examples(model: DiffusionLM, cfg: PretrainConfig) -> list[tuple[list[int], list[int]]]:
    """`training_pairs`, after checking that gen_length, the longest prompt and the batch fit."""
    positions = int(getattr(model.backbone.config, "max_position_embeddings", 0) or 0)
    if positions and cfg.gen_length >= positions:  # checked before building gen_length ids per example
        raise ValueError(f"gen_length: {cfg.gen_length} leaves no room for a prompt in the model's {positions} positions")
    pairs = training_pairs(model, cfg)
    longest = max(len(prompt) for prompt, _ in pairs)
    if positions and longest + cfg.gen_length > positions:
        raise ValueError(f"gen_length: the longest prompt ({longest} tokens) + gen_length {cfg.gen_length} exceed "
                         f"the model's {positions} positions")
    if cfg.batch_size > len(pairs):
        raise ValueError(f"batch_size: {cfg.batch_size} is more than the {len(pairs)} training examples "
                         "(n_per_family per family, plus drill); lower it or raise n_per_family")
    return pairs


def lr_at(cfg: PretrainConfig, step: int) -> float:
    """Learning rate at `step`: linear warm-up over `cfg.warmup` steps, then a cosine to 0.1 x lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _step(model: DiffusionLM, opt: torch.optim.Optimizer, cfg: PretrainConfig, step: int,
          batch: list[tuple[list[int], list[int]]], groups: torch.Tensor | None, gen: torch.Generator,
          bf16: bool) -> tuple[float, float]:
    """One NELBO step on `batch`; returns (loss, gradient norm before clipping to 1)."""
    from tabom.objectives.nelbo import make_nelbo_inputs, nelbo_loss
    from tabom.objectives.types import ObjectiveBatch

    input_ids, attention_mask, response_mask = (t.to(cfg.device) for t in collate(model, batch))
    batch_t = ObjectiveBatch(input_ids, attention_mask, response_mask,
                             torch.full_like(input_ids, -1), model.mask_token_id)
    noised = make_nelbo_inputs(batch_t, gen, groups=groups)
    with torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(noised.input_ids, noised.attention_mask, positions=noised.positions)  # (N, V)
        out_loss = nelbo_loss(logits, noised)  # its cross-entropy runs in float32
    for group in opt.param_groups:
        group["lr"] = lr_at(cfg, step)
    opt.zero_grad(set_to_none=True)
    out_loss.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(out_loss.loss.detach()), float(grad_norm)


def _save_progress(model: DiffusionLM, opt: torch.optim.Optimizer, out: Path, done: int, last: bool,
                   order: list[int], rng: random.Random, gen: torch.Generator) -> None:
    """After `done` steps: the model as `out/step_{done}` (unless it is the last step, saved as
    `out` itself) and the resume state, at the last step too (a longer run, same command with a
    larger --steps and --resume, continues from there)."""
    from tabom.models.loading import save

    model.eval()
    if not last:
        save(model, out / f"step_{done}")
    save_resume_state(out, model, opt, done, order, rng, gen)
    model.train()


def _write_config(out: Path, cfg: PretrainConfig, resume: bool) -> None:
    """`pretrain_config.json`: the settings, the steps of the runs it extends, the init's config."""
    record = asdict(cfg)
    if resume:
        history = extended_from(out / "pretrain_config.json", cfg.steps)
        if history:
            record["extended_from"] = history
    if cfg.init is not None:
        previous = init_config(cfg.init)
        if previous is not None:
            record["init_config"] = previous
    (out / "pretrain_config.json").write_text(json.dumps(record, indent=2) + "\n")


def pretrain(cfg: PretrainConfig, progress: bool = True, resume: bool = False) -> DiffusionLM:
    """Train a fresh tiny model on the task mixture and save it to `cfg.out`; returns the model.

    With `resume`, continue from `cfg.out/resume` (written every `save_every` steps): on the CPU
    with the same thread count the result equals an uninterrupted run.
    """
    from tabom.models.loading import check_device, save
    from tabom.progress import progress_bar
    from tabom.training.build import resolve_precision
    from tabom.training.logger import truncate_step_log

    check_device(cfg.device)
    if not resume:
        check_fresh_out(Path(cfg.out))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = _start_model(cfg)
    bf16 = resolve_precision(cfg.precision, cfg.device) == "bf16"
    pairs = _examples(model, cfg)
    digits = digit_token_ids(model) if cfg.group_numbers else frozenset()
    answer_groups = [number_groups(answer, digits) for _, answer in pairs] if cfg.group_numbers else []
    lengths = [len(p) for p, _ in pairs]
    rng = random.Random(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    order: list[int] = []
    first = 0
    log_path = out / "pretrain_log.jsonl"
    if resume:
        first, order = load_resume_state(out, model, opt, rng, gen)
        truncate_step_log(log_path, first - 1)  # steps >= first are redone (a torn line goes too)
    log = log_path.open("a")
    model.train()
    start = time.time()
    with progress_bar(enabled=progress) as bar:
        task = bar.add_task("pretrain", total=cfg.steps, completed=first)
        for step in range(first, cfg.steps):
            if len(order) < cfg.batch_size:
                order = bucketed_order(lengths, cfg.batch_size, rng)
            idx = [order.pop() for _ in range(cfg.batch_size)]
            batch = [pairs[i] for i in idx]
            # Kept on the CPU: mask_uniform reads the group count there (no device sync) and moves them.
            groups = collate_groups(batch, [answer_groups[i] for i in idx]) if cfg.group_numbers else None
            loss, grad_norm = _step(model, opt, cfg, step, batch, groups, gen, bf16)
            record = {"step": step, "loss": loss, "lr": lr_at(cfg, step), "grad_norm": grad_norm,
                      "elapsed_s": round(time.time() - start, 1)}
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.update(task, advance=1, description=f"pretrain loss {record['loss']:.3f}")
            if cfg.save_every and ((step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps):
                _save_progress(model, opt, out, step + 1, step + 1 == cfg.steps, order, rng, gen)
    log.close()
    model.eval()
    save(model, out)
    _write_config(out, cfg, resume)
    return model


def init_config(init: str) -> dict | None:
    """The `pretrain_config.json` of the checkpoint a run starts from (`init`: a folder or "tiny"),
    or None when it has none (a checkpoint not made by `tabom pretrain`).

    Recorded in the new run's `pretrain_config.json` as `init_config`, so a staged model's file
    holds every stage's settings, the first stage innermost.
    """
    from tabom.models.loading import model_dir, read_json

    path = model_dir(init) / "pretrain_config.json"
    return read_json(path) if path.exists() else None


def extended_from(config_path: Path, steps: int) -> list[int]:
    """The step counts of the finished runs a resumed run extends (`--resume` with a larger
    `--steps`), read from the `pretrain_config.json` the last one wrote; [] if there is none.

    Recorded in the new `pretrain_config.json` as `extended_from`, so the saved settings say that
    the learning-rate schedule restarted (e.g. `[14000]` for 14,000 steps extended to 24,000).
    """
    if not config_path.exists():
        return []
    from tabom.models.loading import read_json

    previous = read_json(config_path)
    history = list(previous.get("extended_from", []))
    if previous["steps"] != steps:
        history.append(previous["steps"])
    return history
