"""The store of a reproduction run by several processes (``torchrun ... tabom reproduce --plan``).

    shard = Shard.from_env()
    store = RankStore(Path("runs/dream"), echo=typer.echo if shard.is_main else None, shard=shard)
    store.step("eval math/tabom/seed0/full_test", path, params, make)   # every rank calls it

Every rank walks the same steps in the same order. Rank 0 alone decides whether a step is cached
(its answer is broadcast, so no rank can see a file another is writing and take another branch),
deletes stale artifacts and writes the completion markers; ``make`` runs on every rank (it holds
the collective work: sharded decoding, DDP/FSDP training) and writes its artifact on rank 0 only.
After a step ran, the ranks meet at a barrier once the marker is written, so every rank reads the
finished artifact of a step before the next one. One process (``Shard(0, 1)``) is the plain
:class:`Store`: no broadcast, no barrier. A question of the caller's own about the files
(``rank0_answer(store, lambda: ...)``) is asked the same way: on rank 0 only, answer broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from tabom.eval.sharding import Shard
from tabom.reproduce.store import Store

T = TypeVar("T")


@dataclass
class RankStore(Store):
    """:class:`Store` whose decisions and writes belong to rank 0 of ``shard``."""

    shard: Shard = field(default_factory=Shard)

    def done(self, artifact: Path, params: dict[str, Any]) -> bool:
        """Rank 0's answer, on every rank (a collective: every rank must ask the same question)."""
        return bool(self.shard.broadcast(super().done(artifact, params) if self.shard.is_main else None))

    def stale(self, artifact: Path, params: dict[str, Any]) -> bool:
        """Rank 0's answer, on every rank (a collective, like :meth:`done`)."""
        return bool(self.shard.broadcast(super().stale(artifact, params) if self.shard.is_main else None))

    def remove(self, artifact: Path) -> None:
        """Rank 0 deletes; the other ranks pass on (they wait for rank 0 at the next :meth:`done`)."""
        if self.shard.is_main:
            super().remove(artifact)

    def mark(self, artifact: Path, params: dict[str, Any], seconds: float | None = None) -> None:
        """Rank 0 writes the marker."""
        if self.shard.is_main:
            super().mark(artifact, params, seconds)

    def step(self, name: str, artifact: Path, params: dict[str, Any], make: Callable[[], Any]) -> bool:
        """:meth:`Store.step` on every rank: rank 0 decides, every rank makes, rank 0 marks, then a barrier."""
        def make_all() -> None:
            make()
            self.shard.barrier()  # every rank's share is in before rank 0 declares the step finished

        ran = super().step(name, artifact, params, make_all)
        if ran:  # the same answer on every rank (rank 0's, from done)
            self.shard.barrier()  # nobody reads the artifact before its marker exists
        return ran


def rank0_answer(store: Store, question: Callable[[], T]) -> T:
    """``question()`` asked on rank 0 of a :class:`RankStore` and its answer broadcast (a collective:
    every rank calls it at the same point); ``question()`` itself for a plain :class:`Store`.

    For a decision about files that rank 0 may delete right after: no other rank reads them, and
    every rank takes the same branch.
    """
    if isinstance(store, RankStore):
        return store.shard.broadcast(question() if store.shard.is_main else None)  # type: ignore[no-any-return]
    return question()
