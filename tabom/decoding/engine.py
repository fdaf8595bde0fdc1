"""The unmasking loop of a masked diffusion LM: ``generate`` and ``decode``.

The engine knows nothing of training or text. It drives any ``model`` with attributes
``mask_token_id``, ``pad_token_id``, ``eos_token_id`` and a call
``model(input_ids (B, L) long, attention_mask (B, L) bool) -> logits (B, L, V)`` aligned so that
``logits[:, p]`` predicts token ``p``; a key/value cache (:mod:`tabom.decoding.kv_cache`) also
needs a :class:`tabom.models.DiffusionLM` (its backbone).

What to decode comes in one :class:`tabom.decoding.settings.DecodeSettings` (``settings=``), the
object every command builds; the keyword arguments of :func:`generate` are the same knobs spelled
out, for scripts and tests.

One step, for every row still decoding:

1. the current block is the step's block (step budget), the row's first block with a mask left
   (``tokens_per_step`` / ``threshold``), or, with a cache and no step budget, the batch's first
   such block (all rows share the cached block; a row done with it waits, its step counter
   still); *eligible* = masked positions inside it;
2. one forward (with a cache: a full one at the block's first step, else only the block's window);
3. the strategy (:mod:`tabom.decoding.strategies`) proposes a token and a score at each eligible
   position; the schedule its registry entry names gives the count (LLaDA's, Dream's, or
   ``min(k, eligible)``) and the ``count`` best positions are unmasked, or, with a threshold,
   every position whose token probability reaches it (at least one).

Rows whose response is fully unmasked leave the batch at once (the batch is compacted and,
without a cache, leading padding no remaining row needs is trimmed), and decoding stops when no
row is left.

    >>> res = generate(model, [[5, 6, 7], [8]], gen_length=32, steps=32, strategy="entropy")
    >>> res.tokens.shape, res.decoding_order.shape, res.nfe
    (torch.Size([2, 32]), torch.Size([2, 32]), 32)
    >>> res = generate(model, prompts, DecodeSettings(block_length=8, cache="dual", threshold=0.9))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .batch import accepts_positions, left_pad, model_device, trim_left_padding
from .chunked import logits_source, rows_per_chunk, step_work
from .kv_cache import BlockCache, check_cache, require_cache_support
from .progress import StepProgress
from .result import DecodeResult, merge_results, to_cpu_result
from .rules import select_positions, threshold_chosen
from .sampling import check_sampling_args
from .schedules import BlockPlan, dream_counts_at, fixed_counts, llada_counts_at, plan_blocks
from .settings import DecodeSettings
from .strategies import check_strategy_options


@dataclass(frozen=True)
class SamplerOptions:
    """How positions and tokens are chosen at each step (validated by :func:`check_options`)."""

    strategy: str
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    generator: torch.Generator | None = None
    record_entropy: bool = False


def check_options(options: SamplerOptions) -> None:
    """Raise ``ValueError`` naming the field when a sampler option is invalid."""
    check_strategy_options(options.strategy, options.top_p, options.top_k)
    check_sampling_args(options.temperature, options.top_p, options.top_k)


def pad_id_of(model: Any) -> int:
    """The padding id: ``model.pad_token_id``, else its ``eos_token_id`` (as Dream falls back)."""
    pad = getattr(model, "pad_token_id", None)
    if pad is None:
        pad = getattr(model, "eos_token_id", None)
    if pad is None:
        raise ValueError("model: has neither pad_token_id nor eos_token_id to pad prompts with")
    return int(pad)


def _step_counts(
    plan: BlockPlan, schedule: str, step: int, eligible: torch.Tensor, block_start: torch.Tensor
) -> torch.Tensor:
    """How many positions each active row unmasks at ``step``, ``(Ba,)`` long."""
    num_eligible = eligible.sum(dim=1)  # (Ba,)
    if plan.tokens_per_step is not None:
        return fixed_counts(num_eligible, plan.tokens_per_step)
    assert plan.steps_per_block is not None
    within = step % plan.steps_per_block
    if schedule == "llada":
        return llada_counts_at(block_start, within, plan.steps_per_block)
    return dream_counts_at(num_eligible, within, plan.steps_per_block)


@dataclass(frozen=True)
class _Engine:
    """Everything one batch's loop needs besides its tensors."""

    plan: BlockPlan
    options: SamplerOptions
    cache: str
    schedule: str


def _cached_logits(
    cache: BlockCache,
    ids: torch.Tensor,
    attn: torch.Tensor,
    wanted: torch.Tensor,
    block: int,
    plan: BlockPlan,
    taking_part: torch.Tensor,
) -> torch.Tensor:
    """Packed logits of ``wanted (Ba, G)`` through the cache: a refresh when ``block`` is new, else
    the block's window for the rows ``taking_part (Ba,)`` (``wanted`` is empty elsewhere)."""
    gen = plan.gen_length
    columns = torch.zeros_like(attn)  # (Ba, L)
    columns[:, -gen:] = wanted
    if cache.block != block:
        return cache.refresh(ids, attn, columns, block)
    start = ids.shape[1] - gen + block * plan.block_length
    rows = None if bool(taking_part.all()) else taking_part
    return cache.window(ids, attn, columns, start=start, end=start + plan.block_length, rows=rows)


def _decode_batch(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    engine: _Engine,
    on_step: Callable[[], None] | None,
) -> DecodeResult:
    """The loop over one batch whose response is the last ``plan.gen_length`` columns.

    Positions of the response that do not hold ``model.mask_token_id`` are kept as given.
    Must run under ``torch.inference_mode()`` (the callers see to it).
    """
    plan, options = engine.plan, engine.options
    gen = plan.gen_length
    batch, device = input_ids.shape[0], input_ids.device
    ids, attn = input_ids.clone(), attention_mask.clone()  # (Ba, L) active rows only
    masked = ids[:, -gen:] == model.mask_token_id  # (Ba, G)
    order = torch.full((batch, gen), -1, dtype=torch.long, device=device)  # (Ba, G)
    block_start = torch.zeros(batch, dtype=torch.long, device=device)  # (Ba,) LLaDA's n
    rows = torch.arange(batch, device=device)  # (Ba,) index of each active row in the batch
    row_step = torch.zeros(batch, dtype=torch.long, device=device)  # (Ba,) steps the row took part in

    out_tokens = ids[:, -gen:].clone()  # (B, G)
    out_order = order.clone()  # (B, G)
    out_steps = torch.zeros(batch, dtype=torch.long, device=device)  # (B,)
    entropy = None
    if options.record_entropy:
        entropy = torch.full((batch, plan.max_steps, gen), float("nan"), device=device)

    block_of_pos = torch.arange(gen, device=device) // plan.block_length  # (G,)
    use_positions = accepts_positions(model)
    cache = None if engine.cache == "none" else BlockCache(model, engine.cache)
    lockstep = cache is not None and not plan.budgeted
    nfe, step = 0, 0
    while True:
        # 1. Rows with nothing left to unmask leave the batch (all of them after the last step).
        done = ~masked.any(dim=1)  # (Ba,)
        if plan.budgeted and step >= plan.max_steps:
            done = torch.ones_like(done)
        if done.any():
            out_tokens[rows[done]] = ids[done, -gen:]
            out_order[rows[done]] = order[done]
            out_steps[rows[done]] = row_step[done]
            keep = ~done
            ids, attn, masked = ids[keep], attn[keep], masked[keep]
            order, block_start, rows, row_step = order[keep], block_start[keep], rows[keep], row_step[keep]
            if cache is None:
                ids, attn = trim_left_padding(ids, attn)
            else:
                cache.select_rows(keep)
        if rows.numel() == 0:
            break

        # 2. The current block and its eligible (masked) positions.
        if plan.steps_per_block is not None:
            current = torch.full_like(rows, step // plan.steps_per_block)  # (Ba,)
        else:
            current = masked.long().argmax(dim=1) // plan.block_length  # (Ba,) first masked
            if lockstep:
                current = torch.full_like(current, int(current.min()))
        eligible = masked & (block_of_pos.unsqueeze(0) == current.unsqueeze(1))  # (Ba, G)
        if plan.steps_per_block is not None and step % plan.steps_per_block == 0:
            block_start = eligible.sum(dim=1)
        taking_part = eligible.any(dim=1) if lockstep else torch.ones_like(masked[:, 0])  # (Ba,)

        # 3. One forward over the active rows, logits only where needed.
        wanted = masked if options.record_entropy else eligible  # (Ba, G)
        if cache is None:  # the decoder once; the LM head later, chunk by chunk (tabom.decoding.chunked)
            logits_of, vocab = logits_source(model, ids, attn, wanted, use_positions=use_positions)
        else:
            wanted = wanted & taking_part.unsqueeze(1)  # a waiting row needs no logits
            packed = _cached_logits(cache, ids, attn, wanted, int(current[0]), plan, taking_part)  # (N, V)
            logits_of, vocab = (lambda lo, hi, packed=packed: packed[lo:hi]), int(packed.shape[-1])
        nfe += 1

        # 4. The rule proposes tokens and scores (with the recorded entropies and the threshold's
        #    confidence, in chunks of positions); the count or the threshold picks the positions.
        work = step_work(logits_of, int(wanted.sum()), eligible[wanted], strategy=options.strategy,
                         temperature=options.temperature, top_p=options.top_p, top_k=options.top_k,
                         generator=options.generator, need_entropy=entropy is not None,
                         need_confidence=plan.threshold is not None, rows=rows_per_chunk(vocab))
        if entropy is not None:
            step_entropy = torch.full(wanted.shape, float("nan"), device=device)  # (Ba, G)
            step_entropy[wanted] = work.entropy
            entropy[rows[taking_part], row_step[taking_part]] = step_entropy[taking_part]
        x0, score = work.x0, work.score
        full_score = torch.full(eligible.shape, float("-inf"), device=device)  # (Ba, G)
        full_score[eligible] = score.float()
        proposed = torch.full(eligible.shape, -1, dtype=torch.long, device=device)  # (Ba, G)
        proposed[eligible] = x0
        if plan.threshold is not None:
            confidence = torch.zeros(eligible.shape, device=device)  # (Ba, G)
            confidence[eligible] = work.confidence
            chosen = threshold_chosen(confidence, full_score, eligible, plan.threshold)  # (Ba, G)
        else:
            counts = _step_counts(plan, engine.schedule, step, eligible, block_start)  # (Ba,)
            chosen = select_positions(full_score, eligible, counts)  # (Ba, G)
        ids[:, -gen:] = torch.where(chosen, proposed, ids[:, -gen:])
        masked &= ~chosen
        order = torch.where(chosen, row_step.unsqueeze(1), order)
        row_step += taking_part.long()
        step += 1
        if on_step is not None:
            on_step()

    if entropy is not None:
        entropy = entropy[:, : int(out_steps.max()) if batch else 0]
    return DecodeResult(out_tokens, out_order, out_steps, nfe, entropy)


_KNOB_DEFAULTS: dict[str, Any] = {
    "gen_length": None, "steps": None, "block_length": None, "strategy": None, "temperature": 0.0,
    "top_p": None, "top_k": None, "tokens_per_step": None, "threshold": None, "cache": "none",
}


def _settings_from(model: Any, settings: DecodeSettings | None, knobs: dict[str, Any]) -> DecodeSettings:
    """One complete :class:`DecodeSettings` from either ``settings`` or the keyword knobs.

    ``settings`` with a None gen_length, steps or strategy is resolved with the model's defaults
    (:meth:`DecodeSettings.resolved`); the keyword knobs are taken as given (no defaults filled
    in, so a Dream schedule at steps == gen_length stays Dream's), and need gen_length, strategy
    and, under a step budget, steps.
    """
    if settings is not None:
        given = [name for name, default in _KNOB_DEFAULTS.items() if knobs[name] != default]
        if given:
            raise ValueError(f"generate: {', '.join(given)} given both in settings and as keywords; use one")
        if settings.gen_length is None or settings.steps is None or settings.strategy is None:
            settings = settings.resolved(model)
        return settings
    for name in ("gen_length", "strategy"):
        if knobs[name] is None:
            raise ValueError(f"{name}: required (or pass settings=DecodeSettings(...))")
    if knobs["steps"] is None:
        if knobs["tokens_per_step"] is None and knobs["threshold"] is None:
            raise ValueError("steps: required without tokens_per_step or threshold")
        knobs = {**knobs, "steps": knobs["gen_length"]}
    return DecodeSettings(**knobs)


def _engine_for(model: Any, settings: DecodeSettings, record_entropy: bool,
                generator: torch.Generator | None) -> _Engine:
    """Validate ``settings`` against ``model`` and build the loop's fixed parts."""
    assert settings.gen_length is not None and settings.steps is not None and settings.strategy is not None
    options = SamplerOptions(settings.strategy, settings.temperature, settings.top_p, settings.top_k,
                             generator, record_entropy)
    check_options(options)
    plan = plan_blocks(settings.gen_length, settings.steps, settings.block_length, settings.tokens_per_step,
                       settings.threshold)
    check_cache(settings.cache, settings.block_length)
    require_cache_support(model, settings.cache)
    if record_entropy and settings.cache == "dual":
        raise ValueError("cache: dual does not recompute positions after the current block, so their "
                         "entropy (TDS) cannot be recorded; use --cache prefix or none")
    return _Engine(plan, options, settings.cache, check_strategy_options(settings.strategy, None, None).schedule)


def decode(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    settings: DecodeSettings | None = None,
    *,
    gen_length: int | None = None,
    steps: int | None = None,
    block_length: int | None = None,
    strategy: str | None = None,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    tokens_per_step: int | None = None,
    threshold: float | None = None,
    cache: str = "none",
    generator: torch.Generator | None = None,
    record_entropy: bool = False,
) -> DecodeResult:
    """Decode an already-built batch whose response is its last ``gen_length`` columns.

    Response positions holding ``model.mask_token_id`` are decoded; any other response token is
    kept as given (infilling), so rows may finish at different steps and leave the batch early.

    Args:
        input_ids: ``(B, L)`` long, left-padded prompt + response.
        attention_mask: ``(B, L)`` bool, False on padding.
        Other arguments as in :func:`generate`.

    Returns:
        :class:`DecodeResult` with ``(B, gen_length)`` tensors, on the CPU.
    """
    knobs = {"gen_length": gen_length, "steps": steps, "block_length": block_length, "strategy": strategy,
             "temperature": temperature, "top_p": top_p, "top_k": top_k, "tokens_per_step": tokens_per_step,
             "threshold": threshold, "cache": cache}
    resolved = _settings_from(model, settings, knobs)
    engine = _engine_for(model, resolved, record_entropy, generator)
    if input_ids.shape[1] < engine.plan.gen_length:
        raise ValueError(f"input_ids: width {input_ids.shape[1]} is below gen_length {engine.plan.gen_length}")
    with torch.inference_mode():
        result = _decode_batch(model, input_ids, attention_mask.bool(), engine, None)
    return to_cpu_result(result)


def _check_prompts(prompts: list[list[int]]) -> None:
    """Raise ``ValueError`` naming the prompt when one is not a list of ints."""
    if len(prompts) == 0:
        raise ValueError("prompts: empty list; give at least one prompt")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, (list, tuple)) or not all(isinstance(t, int) for t in prompt):
            raise ValueError(f"prompts[{index}]: must be a list of int token ids")


def generate(
    model: Any,
    prompts: list[list[int]],
    settings: DecodeSettings | None = None,
    *,
    gen_length: int | None = None,
    steps: int | None = None,
    block_length: int | None = None,
    strategy: str | None = None,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    tokens_per_step: int | None = None,
    threshold: float | None = None,
    cache: str = "none",
    generator: torch.Generator | None = None,
    record_entropy: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
) -> DecodeResult:
    """Decode a response of ``gen_length`` tokens for every prompt.

    Args:
        model: see the module docstring.
        prompts: B lists of token ids, any lengths (batched with left padding).
        settings: every decoding knob in one object (what the commands pass); None gen_length,
            steps or strategy take the model's defaults. Give either this or the knobs below.
        gen_length: response length G.
        steps: step budget (forwards per row); ignored with ``tokens_per_step`` or ``threshold``.
        block_length: semi-autoregressive block size; must divide ``gen_length``, and the
            number of blocks must divide ``steps``. Default: one block.
        strategy: a name in :data:`tabom.decoding.strategies.STRATEGIES` (confidence, entropy,
            margin, random).
        temperature: 0 = greedy; > 0 samples (Gumbel-max for confidence, categorical otherwise).
        top_p, top_k: truncation of the tempered distribution (strategies with truncation only).
        tokens_per_step: unmask exactly ``min(k, remaining in block)`` per step instead.
        threshold: tau in (0, 1]: unmask every eligible position whose token probability is at
            least tau (at least one per step) instead of a count.
        cache: ``"none"`` (exact), ``"prefix"`` or ``"dual"`` (:mod:`tabom.decoding.kv_cache`).
        generator: the only source of randomness (``None``: torch's global generator).
        record_entropy: also return ``entropy (B, S, G)``.
        batch_size: at most this many prompts per forward batch (prompts are grouped by length);
            default ``settings.batch_size``, or all prompts at once with keyword knobs.
        progress: show a rich progress bar over steps.

    Returns:
        :class:`DecodeResult` in the order of ``prompts``, tensors on the CPU.
    """
    _check_prompts(prompts)
    knobs = {"gen_length": gen_length, "steps": steps, "block_length": block_length, "strategy": strategy,
             "temperature": temperature, "top_p": top_p, "top_k": top_k, "tokens_per_step": tokens_per_step,
             "threshold": threshold, "cache": cache}
    resolved = _settings_from(model, settings, knobs)
    engine = _engine_for(model, resolved, record_entropy, generator)
    plan = engine.plan
    if batch_size is None and settings is not None:
        batch_size = settings.batch_size
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    size = len(prompts) if batch_size is None else batch_size
    by_length = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # less padding
    chunks = [by_length[i : i + size] for i in range(0, len(prompts), size)]
    device = model_device(model)
    pad_id = pad_id_of(model)

    results: list[DecodeResult] = []
    with StepProgress(progress, len(chunks), plan.max_steps) as bar, torch.inference_mode():
        for chunk in chunks:
            input_ids, attention_mask = left_pad(
                [list(prompts[i]) for i in chunk],
                plan.gen_length,
                pad_token_id=pad_id,
                mask_token_id=model.mask_token_id,
                device=device,
            )
            results.append(_decode_batch(model, input_ids, attention_mask, engine, bar.advance))
            bar.finish_chunk()
    return to_cpu_result(merge_results(results, chunks, len(prompts)))
