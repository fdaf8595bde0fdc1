"""Evaluation over the processes of ``torchrun`` / ``accelerate launch``: shard, decode, gather.

    world = Shard.from_env()                       # rank and world size from RANK / WORLD_SIZE
    mine = world.take(lengths)                     # this rank's problem indices, balanced by length
    rows = world.gather(my_rows)                   # rank 0: every rank's rows; others: None
    check_world_fits({"task gsm8k": 3}, "--limit 3")   # before Shard.from_env: 4 processes -> exit 2

Each rank decodes only its share of the problems; rank 0 receives every rank's results, puts them
back in problem order and writes the files one process would write. Shares are balanced by
prompt length (longest first, each to the rank with the least work so far), so no rank is left
with all the long prompts. A single process (no launcher) is ``Shard(0, 1)`` and nothing is
initialised. Processes talk through ``torch.distributed``: NCCL on GPUs, gloo on CPUs; objects
are gathered with gloo-compatible ``all_gather_object``.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shard:
    """This process's rank among ``world`` evaluation processes."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> "Shard":
        """Rank and world size set by torchrun / accelerate (``RANK``, ``WORLD_SIZE``); else a single process.

        With more than one process the default process group is created when it does not exist
        yet (NCCL when CUDA is available, else gloo), and on GPUs the process's device is set to
        ``LOCAL_RANK``.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        if world <= 1:
            return cls(0, 1)
        import torch  # noqa: PLC0415
        import torch.distributed as dist  # noqa: PLC0415

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend=backend)
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes the outputs."""
        return self.rank == 0

    def device(self) -> str | None:
        """``cuda:LOCAL_RANK`` when several processes share a machine with GPUs, else None (the default)."""
        import torch  # noqa: PLC0415

        if self.world > 1 and torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return None

    def check_fits(self, n_problems: int, what: str) -> None:
        """ValueError when there are fewer problems than processes (a rank would have nothing to do)."""
        if self.world > n_problems:
            raise ValueError(f"{what}: world size {self.world} is larger than its {n_problems} problems; "
                             "run fewer processes")

    def take(self, lengths: list[int]) -> list[int]:
        """This rank's indices into ``lengths`` (ascending), from :func:`balance`."""
        return balance(lengths, self.world)[self.rank]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` in rank order on rank 0 (None on the others); ``[obj]`` for one process."""
        out = self.all_gather(obj)
        return out if self.is_main else None

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order, on every rank; ``[obj]`` for one process."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist  # noqa: PLC0415

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as dist  # noqa: PLC0415

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank (nothing for one process)."""
        if self.world > 1:
            import torch.distributed as dist  # noqa: PLC0415

            dist.barrier()


def launched_world() -> int:
    """``WORLD_SIZE`` set by torchrun / accelerate launch (1 without a launcher); reads the environment
    only, so a check can run before any process group exists."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValueError(f"environment: WORLD_SIZE: expected an int, got {raw!r}") from None


def check_world_fits(counts: dict[str, int], where: str) -> None:
    """Refuse more processes than problems, before any process group, model or file is touched.

    ``counts`` maps what is split (``task gsm8k``) to its number of problems; ``where`` is the
    option or file that sets them (``--limit 1``, ``--plan plan.yaml``). Every rank runs the same
    check on the same files and stops with exit 2: local rank 0 raises ``ValueError`` (one
    ``error:`` line per machine), the others leave with ``SystemExit(2)`` and print nothing, so
    the launcher's merged log holds the message once and every process exits 2.
    """
    world = launched_world()
    short = sorted((n, name) for name, n in counts.items() if n < world)
    if not short:
        return
    # Every rank leaves with 2, also when the launcher stops it (SIGTERM) after the first one exits.
    # Under a launcher the other ranks wait for that SIGTERM (at most a minute), so that local rank 0,
    # however late it starts, prints its line before anyone is stopped; a rank run alone leaves at once.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(2))
    if int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")) or 0) != 0:
        if os.environ.get("TORCHELASTIC_RUN_ID"):
            time.sleep(60)
        raise SystemExit(2)
    n, name = short[0]
    most = max(1, n)
    raise ValueError(f"{where}: {name}: {n} problem{'s' if n != 1 else ''} for {world} processes; run at most "
                     f"{most} process{'es' if most != 1 else ''} (torchrun --nproc_per_node {most}), or more problems")


def balance(lengths: list[int], world: int) -> list[list[int]]:
    """Indices of ``lengths`` split into ``world`` shares of near-equal total length.

    Longest first, each to the share with the least total so far (ties: the lower rank); each
    share is returned in ascending index order. Deterministic: every rank computes the same split.
    """
    if world < 1:
        raise ValueError(f"world size must be at least 1, got {world}")
    shares: list[list[int]] = [[] for _ in range(world)]
    totals = [0] * world
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        r = min(range(world), key=lambda k: (totals[k], len(shares[k]), k))
        shares[r].append(index)
        totals[r] += max(1, lengths[index])
    return [sorted(s) for s in shares]


def merge_in_order(parts: list[list[tuple[int, Any]]]) -> list[Any]:
    """``(index, value)`` pairs from every rank -> the values in index order (each index exactly once)."""
    pairs = sorted((p for part in parts for p in part), key=lambda p: p[0])
    indices = [i for i, _ in pairs]
    if indices != list(range(len(indices))):
        raise RuntimeError(f"sharded evaluation: gathered indices are not 0..{len(indices) - 1}")
    return [v for _, v in pairs]
