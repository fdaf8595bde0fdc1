"""The problem record and the task-family protocol every built-in family follows.

A family draws random problems from a constructor-tunable distribution (its
difficulty knobs) and verifies an output string against a problem::

    fam = get_family("math_chain", max_start=20)
    train = fam.problems("train", 1000, seed=0)
    fam.verify(train[0], train[0].native)      # True
    fam.verify(train[0], train[0].reference)   # True

Splits are fixed by a stable hash of each problem's canonical text (its
``key``: the content with surface wording such as names left out), 80/10/10
for train/val/test, so train, val and test never share a problem whatever the
seed or the difficulty knobs. Subclasses implement only ``draft(rng)`` and
``verify``.
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SPLITS: tuple[str, ...] = ("train", "val", "test")
DOMAINS: tuple[str, ...] = ("math", "code", "ood")
SPLIT_CUTS: dict[str, tuple[int, int]] = {"train": (0, 80), "val": (80, 90), "test": (90, 100)}

MAX_PROMPT_CHARS = 100
MAX_NATIVE_CHARS = 56
MAX_REFERENCE_CHARS = 120

Split = Literal["train", "val", "test"]


def is_allowed_text(text: str) -> bool:
    """True when every character is printable ASCII (32..126) or a newline."""
    return all(32 <= ord(ch) <= 126 or ch == "\n" for ch in text)


def stable_hash(*parts: str) -> str:
    """A sha256 hex digest of the parts joined by newlines (stable across runs and machines)."""
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def problem_id(family: str, prompt: str) -> str:
    """The stable id of a problem: 16 hex digits of sha256(family + prompt)."""
    return stable_hash(family, prompt)[:16]


def split_of(family: str, key: str) -> str:
    """The split ("train" | "val" | "test") a canonical problem text belongs to, 80/10/10."""
    bucket = int(stable_hash("split", family, key)[:8], 16) % 100
    for name, (lo, hi) in SPLIT_CUTS.items():
        if lo <= bucket < hi:
            return name
    raise AssertionError("unreachable: buckets cover 0..99")


@dataclass(frozen=True)
class Problem:
    """One generated problem.

    ``reference`` is the ground-truth solution in a wordier style of its own;
    ``native`` is the terse style the tiny model is pre-trained on; ``answer``
    is the canonical final answer; ``meta`` holds what ``verify`` needs (JSON
    values only, so problems round-trip through JSONL) and ``meta["key"]``, the
    canonical text that fixed the problem's split.
    """

    id: str
    family: str
    domain: str
    prompt: str
    reference: str
    native: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the dataclass field names."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "<dict>") -> "Problem":
        """Rebuild a problem; ``where`` (e.g. ``"file.jsonl:3"``) prefixes error messages."""
        values: dict[str, Any] = {}
        for name in ("id", "family", "domain", "prompt", "reference", "native", "answer"):
            if name not in data:
                raise ValueError(f"{where}: {name}: missing field")
            if not isinstance(data[name], str):
                raise ValueError(f"{where}: {name}: expected a string, got {type(data[name]).__name__}")
            values[name] = data[name]
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise ValueError(f"{where}: meta: expected an object, got {type(meta).__name__}")
        if values["domain"] not in DOMAINS:
            raise ValueError(f"{where}: domain: {values['domain']!r} is not one of {DOMAINS}")
        return cls(meta=dict(meta), **values)


@dataclass(frozen=True)
class Draft:
    """What a family's ``draft`` returns: a problem before its id and split are fixed.

    ``key`` is the canonical problem text used for splits and de-duplication
    (e.g. the equation without the wording around it).
    """

    key: str
    prompt: str
    reference: str
    native: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


def draft_fits(d: Draft) -> bool:
    """True when a draft respects the length and charset limits shared by all families."""
    return (
        len(d.prompt) <= MAX_PROMPT_CHARS
        and len(d.native) <= MAX_NATIVE_CHARS
        and len(d.reference) <= MAX_REFERENCE_CHARS
        and all(is_allowed_text(t) for t in (d.prompt, d.native, d.reference, d.answer))
        and d.prompt.strip() != ""
        and d.answer.strip() != ""
    )


class TaskFamily(ABC):
    """A procedurally generated, verifiable task family.

    Subclasses set ``name`` and ``domain`` and implement ``draft`` and ``verify``;
    their constructor arguments tune difficulty.
    """

    name: str = ""
    domain: str = ""

    @abstractmethod
    def draft(self, rng: random.Random) -> Draft:
        """Draw one random problem (any split) using only ``rng`` for randomness."""

    def draft_key(self, rng: random.Random) -> tuple[str, Callable[[random.Random], Draft]]:
        """The canonical text of a random problem and a function that renders it in full.

        ``problems`` renders only the keys that fall in the requested split, so
        a family whose rendering is costly (e.g. computing hidden tests)
        overrides this; the default drafts in full at once.
        """
        d = self.draft(rng)
        return d.key, lambda _rng: d

    @abstractmethod
    def verify(self, problem: Problem, output: str) -> bool:
        """True when ``output`` (native or reference style) solves ``problem``."""

    def verify_many(self, problems: list[Problem], outputs: list[str]) -> list[bool]:
        """Verify several outputs; families that run code override this to run in parallel."""
        if len(problems) != len(outputs):
            raise ValueError(f"verify_many: outputs: {len(outputs)} outputs for {len(problems)} problems")
        return [self.verify(p, o) for p, o in zip(problems, outputs)]

    def problems(self, split: str, n: int, seed: int = 0, *, at_most: bool = False) -> list[Problem]:
        """``n`` distinct problems of ``split``, the same list for the same seed and knobs.

        Raises ``ValueError`` when the family (with these knobs) cannot produce
        ``n`` distinct problems of that split within a generous number of draws;
        with ``at_most``, returns the fewer it found instead (pre-training cycles them).
        """
        if split not in SPLITS:
            raise ValueError(f"{self.name}: split: {split!r} is not one of {SPLITS}")
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{self.name}: n: expected a non-negative int, got {n!r}")
        rng = random.Random(f"{self.name}|{split}|{seed}")
        seen: set[str] = set()
        seen_prompts: set[str] = set()
        out: list[Problem] = []
        max_draws = 60 * n + 5000
        draws = too_long = 0
        while len(out) < n and draws < max_draws:
            draws += 1
            key, render = self.draft_key(rng)
            if key in seen or split_of(self.name, key) != split:
                continue
            d = render(random.Random(f"{self.name}|{split}|{seed}|{key}"))
            if d.key != key:
                raise AssertionError(f"{self.name}: draft_key returned {key!r} but rendered {d.key!r}")
            if d.prompt in seen_prompts:
                continue
            if not draft_fits(d):
                too_long += 1
                continue
            seen.add(d.key)
            seen_prompts.add(d.prompt)
            out.append(self._finish(d))
        if len(out) < n and not at_most:
            raise ValueError(
                f"{self.name}: could only find {len(out)} distinct {split} problems of the {n} "
                f"requested in {draws} draws ({too_long} over the length limits); widen the "
                f"difficulty ranges given to the constructor or ask for fewer"
            )
        return out

    def _finish(self, d: Draft) -> Problem:
        return Problem(
            id=problem_id(self.name, d.prompt),
            family=self.name,
            domain=self.domain,
            prompt=d.prompt,
            reference=d.reference,
            native=d.native,
            answer=d.answer,
            meta={**d.meta, "key": d.key},
        )


def check_range(owner: str, name: str, lo: int, hi: int, minimum: int | None = None) -> None:
    """Raise ``ValueError`` naming the argument when ``lo..hi`` is not a valid int range."""
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo > hi:
        raise ValueError(f"{owner}: {name}: expected ints lo <= hi, got {lo!r}..{hi!r}")
    if minimum is not None and lo < minimum:
        raise ValueError(f"{owner}: {name}: lower end {lo} is below the minimum {minimum}")
