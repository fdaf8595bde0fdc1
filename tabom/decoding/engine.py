"""The unmasking loop of a masked diffusion LM: ``generate`` and ``decode``.

The engine knows nothing of training or text. It drives any ``model`` with attributes
``mask_token_id``, ``pad_token_id``, ``eos_token_id`` and a call
``model(input_ids (B, L) long, attention_mask (B, L) bool) -> logits (B, L, V)`` aligned so that
``logits[:, p]`` predicts token ``p``.

One step, for every row still decoding:

1. the current block is the step's block (step budget) or the row's first block with a mask
   left (``tokens_per_step``); *eligible* = masked positions inside it;
2. the schedule gives the row's count (LLaDA's for ``confidence``, Dream's otherwise, or
   ``min(k, eligible)``);
3. one forward; the rule (:mod:`tabom.decoding.rules`) proposes a token and a score at each
   eligible position, and the ``count`` best positions are unmasked.

Rows whose response is fully unmasked leave the batch at once (the batch is compacted and
leading padding no remaining row needs is trimmed), and decoding stops when no row is left.

    >>> res = generate(model, [[5, 6, 7], [8]], gen_length=32, steps=32, strategy="entropy")
    >>> res.tokens.shape, res.decoding_order.shape, res.nfe
    (torch.Size([2, 32]), torch.Size([2, 32]), 32)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .batch import accepts_positions, left_pad, model_device, response_logits, trim_left_padding
from .progress import StepProgress
from .result import DecodeResult
from .rules import STRATEGIES, propose, select_positions
from .sampling import check_sampling_args, shannon_entropy
from .schedules import BlockPlan, dream_counts_at, fixed_counts, llada_counts_at, plan_blocks


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
    if options.strategy not in STRATEGIES:
        raise ValueError(
            f"strategy: unknown {options.strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    check_sampling_args(options.temperature, options.top_p, options.top_k)
    truncates = options.top_p is not None or options.top_k is not None
    if options.strategy == "confidence" and truncates:
        raise ValueError("top_p/top_k: not used by the confidence strategy (LLaDA); leave unset")


def pad_id_of(model: Any) -> int:
    """The padding id: ``model.pad_token_id``, else its ``eos_token_id`` (as Dream falls back)."""
    pad = getattr(model, "pad_token_id", None)
    if pad is None:
        pad = getattr(model, "eos_token_id", None)
    if pad is None:
        raise ValueError("model: has neither pad_token_id nor eos_token_id to pad prompts with")
    return int(pad)


def _step_counts(
    plan: BlockPlan, strategy: str, step: int, eligible: torch.Tensor, block_start: torch.Tensor
) -> torch.Tensor:
    """How many positions each active row unmasks at ``step``, ``(Ba,)`` long."""
    num_eligible = eligible.sum(dim=1)  # (Ba,)
    if plan.tokens_per_step is not None:
        return fixed_counts(num_eligible, plan.tokens_per_step)
    assert plan.steps_per_block is not None
    within = step % plan.steps_per_block
    if strategy == "confidence":
        return llada_counts_at(block_start, within, plan.steps_per_block)
    return dream_counts_at(num_eligible, within, plan.steps_per_block)


def _decode_batch(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    plan: BlockPlan,
    options: SamplerOptions,
    on_step: Callable[[], None] | None,
) -> DecodeResult:
    """The loop over one batch whose response is the last ``plan.gen_length`` columns.

    Positions of the response that do not hold ``model.mask_token_id`` are kept as given.
    Must run under ``torch.inference_mode()`` (the callers see to it).
    """
    gen = plan.gen_length
    batch, device = input_ids.shape[0], input_ids.device
    ids, attn = input_ids.clone(), attention_mask.clone()  # (Ba, L) active rows only
    masked = ids[:, -gen:] == model.mask_token_id  # (Ba, G)
    order = torch.full((batch, gen), -1, dtype=torch.long, device=device)  # (Ba, G)
    block_start = torch.zeros(batch, dtype=torch.long, device=device)  # (Ba,) LLaDA's n
    rows = torch.arange(batch, device=device)  # (Ba,) index of each active row in the batch

    out_tokens = ids[:, -gen:].clone()  # (B, G)
    out_order = order.clone()  # (B, G)
    out_steps = torch.zeros(batch, dtype=torch.long, device=device)  # (B,)
    entropy = None
    if options.record_entropy:
        entropy = torch.full((batch, plan.max_steps, gen), float("nan"), device=device)

    block_of_pos = torch.arange(gen, device=device) // plan.block_length  # (G,)
    use_positions = accepts_positions(model)
    nfe, step = 0, 0
    while True:
        # 1. Rows with nothing left to unmask leave the batch (all of them after the last step).
        done = ~masked.any(dim=1)  # (Ba,)
        if plan.steps_per_block is not None and step >= plan.max_steps:
            done = torch.ones_like(done)
        if done.any():
            out_tokens[rows[done]] = ids[done, -gen:]
            out_order[rows[done]] = order[done]
            out_steps[rows[done]] = step
            keep = ~done
            ids, attn, masked = ids[keep], attn[keep], masked[keep]
            order, block_start, rows = order[keep], block_start[keep], rows[keep]
            ids, attn = trim_left_padding(ids, attn)
        if rows.numel() == 0:
            break

        # 2. The current block and how many of its masked positions this step unmasks.
        if plan.steps_per_block is not None:
            current = torch.full_like(rows, step // plan.steps_per_block)  # (Ba,)
        else:
            current = masked.long().argmax(dim=1) // plan.block_length  # (Ba,) first masked
        eligible = masked & (block_of_pos.unsqueeze(0) == current.unsqueeze(1))  # (Ba, G)
        if plan.steps_per_block is not None and step % plan.steps_per_block == 0:
            block_start = eligible.sum(dim=1)
        counts = _step_counts(plan, options.strategy, step, eligible, block_start)  # (Ba,)

        # 3. One forward over the active rows, logits only where needed.
        wanted = masked if options.record_entropy else eligible  # (Ba, G)
        packed = response_logits(model, ids, attn, wanted, use_positions=use_positions)  # (N, V)
        nfe += 1
        if entropy is not None:
            step_entropy = torch.full(wanted.shape, float("nan"), device=device)  # (Ba, G)
            step_entropy[wanted] = shannon_entropy(packed)
            entropy[rows, step] = step_entropy
            packed = packed[eligible[wanted]]  # (N_eligible, V)

        # 4. The rule proposes tokens and scores; the best `counts` positions are unmasked.
        x0, score = propose(
            options.strategy,
            packed,
            temperature=options.temperature,
            top_p=options.top_p,
            top_k=options.top_k,
            generator=options.generator,
        )
        full_score = torch.full(eligible.shape, float("-inf"), device=device)  # (Ba, G)
        full_score[eligible] = score.float()
        proposed = torch.full(eligible.shape, -1, dtype=torch.long, device=device)  # (Ba, G)
        proposed[eligible] = x0
        chosen = select_positions(full_score, eligible, counts)  # (Ba, G)
        ids[:, -gen:] = torch.where(chosen, proposed, ids[:, -gen:])
        masked &= ~chosen
        order[chosen] = step
        step += 1
        if on_step is not None:
            on_step()

    if entropy is not None:
        entropy = entropy[:, : int(out_steps.max()) if batch else 0]
    return DecodeResult(out_tokens, out_order, out_steps, nfe, entropy)


def _to_cpu_result(result: DecodeResult) -> DecodeResult:
    """Ordinary (non-inference) CPU tensors, safe to modify in place later."""
    entropy = None if result.entropy is None else result.entropy.cpu().clone()
    return DecodeResult(
        result.tokens.cpu().clone(),
        result.decoding_order.cpu().clone(),
        result.steps_run.cpu().clone(),
        result.nfe,
        entropy,
    )


def decode(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    gen_length: int,
    steps: int,
    block_length: int | None = None,
    strategy: str,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    tokens_per_step: int | None = None,
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
    options = SamplerOptions(strategy, temperature, top_p, top_k, generator, record_entropy)
    check_options(options)
    plan = plan_blocks(gen_length, steps, block_length, tokens_per_step)
    if input_ids.shape[1] < gen_length:
        raise ValueError(f"input_ids: width {input_ids.shape[1]} is below gen_length {gen_length}")
    with torch.inference_mode():
        result = _decode_batch(model, input_ids, attention_mask.bool(), plan, options, None)
    return _to_cpu_result(result)


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
    *,
    gen_length: int,
    steps: int,
    block_length: int | None = None,
    strategy: str,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    tokens_per_step: int | None = None,
    generator: torch.Generator | None = None,
    record_entropy: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
) -> DecodeResult:
    """Decode a response of ``gen_length`` tokens for every prompt.

    Args:
        model: see the module docstring.
        prompts: B lists of token ids, any lengths (batched with left padding).
        gen_length: response length G.
        steps: step budget (forwards per row); ignored with ``tokens_per_step``.
        block_length: semi-autoregressive block size; must divide ``gen_length``, and the
            number of blocks must divide ``steps``. Default: one block.
        strategy: ``"confidence"`` (LLaDA), ``"entropy"`` (Dream), ``"margin"`` or ``"random"``.
        temperature: 0 = greedy; > 0 samples (Gumbel-max for confidence, categorical otherwise).
        top_p, top_k: truncation of the tempered distribution (not for ``confidence``).
        tokens_per_step: unmask exactly ``min(k, remaining in block)`` per step instead.
        generator: the only source of randomness (``None``: torch's global generator).
        record_entropy: also return ``entropy (B, S, G)``.
        batch_size: at most this many prompts per forward batch (prompts are grouped by length).
        progress: show a rich progress bar over steps.

    Returns:
        :class:`DecodeResult` in the order of ``prompts``, tensors on the CPU.
    """
    _check_prompts(prompts)
    options = SamplerOptions(strategy, temperature, top_p, top_k, generator, record_entropy)
    check_options(options)
    plan = plan_blocks(gen_length, steps, block_length, tokens_per_step)
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
                gen_length,
                pad_token_id=pad_id,
                mask_token_id=model.mask_token_id,
                device=device,
            )
            results.append(
                _decode_batch(model, input_ids, attention_mask, plan, options, bar.advance)
            )
            bar.finish_chunk()
    return _to_cpu_result(_merge(results, chunks, len(prompts)))


def _merge(results: list[DecodeResult], chunks: list[list[int]], total: int) -> DecodeResult:
    """Put the rows of every chunk back at their prompts' indices; pad entropy to a common S."""
    first = results[0]
    gen = first.tokens.shape[1]
    device = first.tokens.device
    tokens = torch.empty((total, gen), dtype=torch.long, device=device)
    order = torch.empty((total, gen), dtype=torch.long, device=device)
    steps_run = torch.empty(total, dtype=torch.long, device=device)
    for result, chunk in zip(results, chunks):
        index = torch.tensor(chunk, device=device)
        tokens[index], order[index], steps_run[index] = (
            result.tokens,
            result.decoding_order,
            result.steps_run,
        )
    entropy = None
    if first.entropy is not None:
        span = int(steps_run.max())
        entropy = torch.full((total, span, gen), float("nan"), device=device)
        for result, chunk in zip(results, chunks):
            assert result.entropy is not None
            part = result.entropy[:, :span]
            entropy[torch.tensor(chunk, device=device), : part.shape[1]] = part
    nfe = sum(result.nfe for result in results)
    return DecodeResult(tokens, order, steps_run, nfe, entropy)
