"""RankStore's decisions without a process group: a shard whose broadcast is rank 0's answer, recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabom.eval.sharding import Shard
from tabom.reproduce.rank_store import RankStore, rank0_answer
from tabom.reproduce.store import Store


@dataclass(frozen=True)
class FakeShard(Shard):
    """``rank`` of ``world``; broadcast returns ``rank0`` (what rank 0 would send) and records what it was given."""

    rank0: Any = None
    sent: list[Any] = field(default_factory=list)

    def broadcast(self, obj: Any) -> Any:
        self.sent.append(obj)
        return obj if self.is_main else self.rank0


def test_rank0_answer_asks_rank0_only(tmp_path: Path) -> None:
    """Rank 0 asks and sends its answer; rank 1 never asks (it may not read what rank 0 deletes) and takes
    rank 0's answer; a plain Store (one process) simply asks."""
    asked: list[str] = []

    def question() -> bool:
        asked.append("asked")
        return True

    main = FakeShard(0, 2)
    assert rank0_answer(RankStore(tmp_path, shard=main), question) is True and main.sent == [True]
    other = FakeShard(1, 2, rank0=False)
    assert rank0_answer(RankStore(tmp_path, shard=other), question) is False and other.sent == [None]
    assert rank0_answer(Store(tmp_path), question) is True
    assert asked == ["asked", "asked"]  # rank 0 and the plain store; not rank 1
