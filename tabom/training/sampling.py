"""The order rows are trained in each epoch: a permutation of (seed, epoch), optionally length-grouped.

    order = train_order(lengths, seed, epoch, global_batch=batch_size * world, group=True)
    for idx in rank_batches(order, batch_size, rank, world): ...   # tabom.training.data

Without grouping the order is `epoch_order(n, seed, epoch)` (a uniform permutation). With
`data.group_by_length: true` that permutation is cut into mega-batches of `MEGA_BATCHES` global
batches; each mega-batch is sorted by row length (longest first, ties in permutation order) and
cut into global batches, so the rows of one global batch have similar lengths and prompts are
left-padded less; then the full global batches are shuffled (generator of (seed, epoch)), the
last, possibly partial, one stays last (the wrap-around of `rank_batches` needs it there).
Every rank computes the same order from the same lengths.
"""

from __future__ import annotations

import torch

from tabom.training.data import epoch_order

MEGA_BATCHES = 16
"""Global batches per sorted mega-batch: larger groups lengths tighter but orders rows less randomly."""


def group_by_length(order: list[int], lengths: list[int], global_batch: int, seed: int, epoch: int) -> list[int]:
    """Rearrange the permutation `order` so each run of `global_batch` rows has similar lengths.

    Example (global_batch 2, lengths [5, 1, 4, 2]): order [0, 1, 2, 3] -> global batches [0, 2]
    (lengths 5, 4) and [3, 1] (lengths 2, 1), in an order drawn from (seed, epoch).
    """
    if global_batch < 1:
        raise ValueError(f"group_by_length: global_batch must be >= 1, got {global_batch}")
    mega = global_batch * MEGA_BATCHES
    grouped: list[int] = []
    for start in range(0, len(order), mega):
        chunk = order[start: start + mega]
        grouped.extend(sorted(chunk, key=lambda i: -lengths[i]))  # sorted() is stable
    batches = [grouped[i: i + global_batch] for i in range(0, len(grouped), global_batch)]
    tail = batches.pop() if batches and len(batches[-1]) < global_batch else None
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 7_919)
    shuffled = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
    if tail is not None:
        shuffled.append(tail)
    return [i for batch in shuffled for i in batch]


def train_order(lengths: list[int], seed: int, epoch: int, global_batch: int, group: bool) -> list[int]:
    """The epoch's row order: `epoch_order`, length-grouped when `group` (see the module doc)."""
    order = epoch_order(len(lengths), seed, epoch)
    if not group:
        return order
    return group_by_length(order, lengths, global_batch, seed, epoch)
