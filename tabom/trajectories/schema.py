"""The trajectory record: one self-distilled decode of one prompt, one JSON object per line.

A base diffusion LM decodes its own answer to a prompt and, for every response position, records
the 0-based step at which that position was unmasked. That is what TABOM trains on.

    traj = Trajectory(id="gsm-0", prompt="2+2?", response="4", prompt_token_ids=[...],
                      response_token_ids=[...], decoding_order=[...], method="entropy", ...)
    line = traj.to_line()                                   # one JSON object, no newline
    same = Trajectory.from_json(json.loads(line), path="t.jsonl", lineno=1)

Files tabom writes carry the field names of the authors' release (`prompt`, `response`,
`response_token_ids`, `decoding_order`, `non_ltr_positions`, `method`, `data_source`), with the
release's meanings; the reader also accepts the release's `question` for `prompt` and `gen_text`
for `response`. `docs/trajectory_format.md` documents every field and why `prompt`/`response`
(and not `question`/`gen_text`) are the names written.

Bad input raises `TrajectoryError` (a `ValueError`) whose message is `FILE:LINE: field: what is
wrong`. Every integer is range-checked (token ids in [0, 2^31), or in [0, V) when the model's
vocabulary size V is known; steps in [-1, settings.steps); settings counts in [1, 2^31)), every
float finite. :class:`TrajectoryChecker` validates the rows of one file in order (the schema,
unique ids, the vocabulary): `tabom data inspect` and `tabom train` both read through it, so a
file one accepts the other accepts. This module imports only the standard library (and the
torch-free strategy registry, `tabom.decoding.strategies`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tabom.decoding.strategies import STRATEGIES

METHODS: tuple[str, ...] = STRATEGIES
"""Decoding strategies a trajectory may record: the names of `tabom.decoding.strategies.REGISTRY`."""

REQUIRED_FIELDS: tuple[str, ...] = (
    "id", "prompt", "response", "prompt_token_ids", "response_token_ids", "decoding_order",
    "method", "data_source", "correct", "model", "settings",
)
OPTIONAL_FIELDS: tuple[str, ...] = ("answer", "non_ltr_positions")
ALIASES: dict[str, str] = {"question": "prompt", "gen_text": "response"}
"""Release field name -> tabom field name, accepted on read (the tabom name wins if both)."""

# settings key -> (accepted JSON types, may be null)
_SETTINGS_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "gen_length": ((int,), False),
    "steps": ((int,), False),
    "block_length": ((int,), True),
    "temperature": ((int, float), False),
    "top_p": ((int, float), True),
    "top_k": ((int,), True),
    "tokens_per_step": ((int,), True),
    "seed": ((int,), True),
    "eos_token_id": ((int,), True),
    "vocab_size": ((int,), True),
    "threshold": ((int, float), True),
}
_POSITIVE_SETTINGS: tuple[str, ...] = ("gen_length", "steps", "block_length", "tokens_per_step", "vocab_size")
MAX_ID = 2**31 - 1
"""Largest token id, step or settings count a row may hold (no vocabulary or decode is larger)."""
_SETTINGS_RANGES: dict[str, tuple[float, float]] = {  # key -> inclusive [low, high]
    **{key: (1, MAX_ID) for key in _POSITIVE_SETTINGS},
    "top_k": (0, MAX_ID),
    "eos_token_id": (0, MAX_ID),
    "seed": (-(2**63), 2**64 - 1),
    "temperature": (0.0, math.inf),
    "top_p": (0.0, 1.0),
    "threshold": (0.0, 1.0),
}


class TrajectoryError(ValueError):
    """A bad trajectory line: the message is `FILE:LINE: field: what is wrong`."""

    def __init__(self, path: str, lineno: int, field_name: str, problem: str) -> None:
        super().__init__(f"{path}:{lineno}: {field_name}: {problem}")
        self.path = path
        self.lineno = lineno
        self.field = field_name
        self.problem = problem


@dataclass
class Trajectory:
    """One decoded response and the step at which each of its positions was unmasked.

    Attributes:
        id: unique id of this trajectory within its file.
        prompt: the user prompt text, without chat template.
        response: decoded response text, cut at the first EOS.
        prompt_token_ids: exactly the ids the model saw, chat template included; length P.
        response_token_ids: the gen_length response ids, EOS-padded; length G.
        decoding_order: length G; 0-based step at which each position was unmasked, -1 if never.
        method: decoding strategy, one of `METHODS`.
        data_source: where the prompt came from (task family or file tag).
        correct: verdict of the verifier, None when unknown.
        model: name or path of the model that decoded.
        settings: decode settings (gen_length, steps, block_length, temperature, top_p, top_k,
            tokens_per_step, seed; optionally eos_token_id).
        answer: reference answer, when the prompt had one.
        non_ltr_positions: response positions (0-based) the release marks as decoded out of
            left-to-right order; its ling_coder recipe samples the time-delay cut from their
            decode steps. Validated and passed through, never computed here.
        extra: unknown fields read from a file, written back unchanged.
    """

    id: str
    prompt: str
    response: str
    prompt_token_ids: list[int]
    response_token_ids: list[int]
    decoding_order: list[int]
    method: str
    data_source: str
    correct: bool | None
    model: str
    settings: dict[str, Any]
    answer: str | None = None
    non_ltr_positions: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gen_length(self) -> int:
        """Number of response positions G."""
        return len(self.response_token_ids)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written for this trajectory (release field names, fixed key order)."""
        obj: dict[str, Any] = {
            "id": self.id,
            "prompt": self.prompt,
            "response": self.response,
            "prompt_token_ids": list(self.prompt_token_ids),
            "response_token_ids": list(self.response_token_ids),
            "decoding_order": list(self.decoding_order),
            "method": self.method,
            "data_source": self.data_source,
            "correct": self.correct,
            "model": self.model,
            "settings": dict(self.settings),
        }
        if self.answer is not None:
            obj["answer"] = self.answer
        if self.non_ltr_positions is not None:
            obj["non_ltr_positions"] = list(self.non_ltr_positions)
        for key, value in self.extra.items():
            obj.setdefault(key, value)
        return obj

    def to_line(self) -> str:
        """One JSON line without the trailing newline (UTF-8 text kept as is)."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, obj: Any, *, path: str = "<memory>", lineno: int = 0,
                  vocab_size: int | None = None) -> Trajectory:
        """Validate a parsed JSON object and build a `Trajectory`; raise `TrajectoryError`.

        Token ids must lie in [0, vocab_size): ``vocab_size`` (the model's) when given, else the
        row's `settings.vocab_size` when it records one, else [0, 2^31).
        """
        return _parse(obj, str(path), lineno, vocab_size)


_Err = Callable[[str, str], TrajectoryError]  # (field, problem) -> error to raise


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(obj: dict[str, Any], key: str, err: _Err, low: float = 0, high: float = MAX_ID,
              what: str = "") -> list[int]:
    """The list of ints under ``key``, each in [low, high] (``what`` names whose bound it is)."""
    value = obj[key]
    if not isinstance(value, list):
        raise err(key, f"expected a list of ints, got {_type_name(value)}")
    for i, item in enumerate(value):
        if not _is_int(item):
            raise err(key, f"item {i} is {_type_name(item)} {item!r}, expected an int")
        if not low <= item <= high:
            raise err(key, f"item {i} is {item}, outside {what or 'the range'} [{low}, {high + 1})")
    return value


def _settings(obj: dict[str, Any], err: _Err) -> dict[str, Any]:
    settings = obj["settings"]
    if not isinstance(settings, dict):
        raise err("settings", f"expected an object, got {_type_name(settings)}")
    for key, (types, nullable) in _SETTINGS_TYPES.items():
        if key not in settings:
            continue
        value = settings[key]
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types) + (" or null" if nullable else "")
            raise err(f"settings.{key}", f"expected {wanted}, got {_type_name(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise err(f"settings.{key}", f"must be a finite number, got {value}")
        low, high = _SETTINGS_RANGES.get(key, (-math.inf, math.inf))
        if not low <= value <= high:
            bound = f">= {low}" if value < low else f"<= {high}"
            raise err(f"settings.{key}", f"must be {bound}, got {value}")
    return settings


def _one_token_per_step(settings: dict[str, Any], gen_length: int) -> bool:
    """True when the settings unmask exactly one position per step (so no step repeats)."""
    if settings.get("threshold") is not None:
        return False  # threshold decoding unmasks as many positions as pass it
    tokens_per_step = settings.get("tokens_per_step")
    if tokens_per_step is not None:
        return tokens_per_step == 1
    block_length = settings.get("block_length")
    no_blocks = block_length is None or block_length >= gen_length
    return no_blocks and settings.get("steps") == gen_length


def _check_order(order: list[int], settings: dict[str, Any], err: _Err) -> None:
    steps = settings.get("steps")
    limit = steps if steps is not None else MAX_ID + 1
    for pos, step in enumerate(order):
        if step < -1 or step >= limit:
            problem = f"position {pos} has step {step}, expected -1 or in [0, {limit})"
            raise err("decoding_order", problem)
    if not _one_token_per_step(settings, len(order)):
        return
    first_pos: dict[int, int] = {}
    for pos, step in enumerate(order):
        if step < 0:
            continue
        if step in first_pos:
            raise err(
                "decoding_order",
                f"step {step} unmasks positions {first_pos[step]} and {pos}, "
                "but the settings decode one token per step",
            )
        first_pos[step] = pos


def _parse(obj: Any, path: str, lineno: int, vocab_size: int | None = None) -> Trajectory:
    def err(field_name: str, problem: str) -> TrajectoryError:
        return TrajectoryError(path, lineno, field_name, problem)

    if not isinstance(obj, dict):
        raise err("json", f"expected a JSON object, got {_type_name(obj)}")
    obj = dict(obj)
    for alias, name in ALIASES.items():
        if alias in obj:
            value = obj.pop(alias)
            obj.setdefault(name, value)
    for key in REQUIRED_FIELDS:
        if key not in obj:
            alias = next((a for a, n in ALIASES.items() if n == key), None)
            hint = f" (or its alias '{alias}')" if alias else ""
            raise err(key, f"required field is missing{hint}")
    for key in ("id", "prompt", "response", "method", "data_source", "model"):
        if not isinstance(obj[key], str):
            raise err(key, f"expected a string, got {_type_name(obj[key])}")
    if not obj["id"]:
        raise err("id", "must not be empty")
    if obj["method"] not in METHODS:
        raise err("method", f"{obj['method']!r} is not one of {', '.join(METHODS)}")
    if obj["correct"] is not None and not isinstance(obj["correct"], bool):
        raise err("correct", f"expected true, false or null, got {_type_name(obj['correct'])}")
    if obj.get("answer") is not None and not isinstance(obj["answer"], str):
        raise err("answer", f"expected a string or null, got {_type_name(obj['answer'])}")
    settings = _settings(obj, err)
    if vocab_size is not None:
        ids_high, ids_what = vocab_size - 1, "the model's vocabulary"
    elif settings.get("vocab_size") is not None:
        ids_high, ids_what = settings["vocab_size"] - 1, "the vocabulary of settings.vocab_size"
    else:
        ids_high, ids_what = MAX_ID, "the token id range"
    prompt_ids = _int_list(obj, "prompt_token_ids", err, 0, ids_high, ids_what)
    response_ids = _int_list(obj, "response_token_ids", err, 0, ids_high, ids_what)
    order = _int_list(obj, "decoding_order", err, -math.inf, math.inf)  # steps: `_check_order`
    if not response_ids:
        raise err("response_token_ids", "must not be empty")
    if len(order) != len(response_ids):
        raise err(
            "decoding_order",
            f"has {len(order)} entries but response_token_ids has {len(response_ids)}",
        )
    gen_length = settings.get("gen_length")
    if gen_length is not None and gen_length != len(response_ids):
        raise err(
            "settings.gen_length",
            f"is {gen_length} but response_token_ids has {len(response_ids)} entries",
        )
    _check_order(order, settings, err)
    non_ltr: list[int] | None = None
    if obj.get("non_ltr_positions") is not None:
        non_ltr = _int_list(obj, "non_ltr_positions", err)
        for p in non_ltr:
            if not 0 <= p < len(response_ids):
                raise err("non_ltr_positions", f"position {p} is outside [0, {len(response_ids)})")
    known = set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS)
    return Trajectory(
        id=obj["id"],
        prompt=obj["prompt"],
        response=obj["response"],
        prompt_token_ids=list(prompt_ids),
        response_token_ids=list(response_ids),
        decoding_order=list(order),
        method=obj["method"],
        data_source=obj["data_source"],
        correct=obj["correct"],
        model=obj["model"],
        settings=dict(settings),
        answer=obj.get("answer"),
        non_ltr_positions=non_ltr,
        extra={k: v for k, v in obj.items() if k not in known},
    )


class TrajectoryChecker:
    """Validates the lines of one trajectory file in order: schema, unique ids, vocabulary.

        checker = TrajectoryChecker("t.jsonl", vocab_size=model.vocab_size)
        for lineno, item in iter_json_lines("t.jsonl"):
            traj = checker.check(item, lineno)       # TrajectoryError on a bad line

    `item` is a parsed JSON value or the `TrajectoryError` the reader made of an unparsable
    line (raised as is). A later line repeating an earlier id is an error naming both lines.
    """

    def __init__(self, path: str | Any, vocab_size: int | None = None) -> None:
        if vocab_size is not None and (not _is_int(vocab_size) or vocab_size < 1):
            raise ValueError(f"vocab_size: must be an int >= 1, got {vocab_size!r}")
        self.path = str(path)
        self.vocab_size = vocab_size
        self.first_line: dict[str, int] = {}

    def check(self, item: Any, lineno: int) -> Trajectory:
        """The line's `Trajectory`, or `TrajectoryError` naming file, line and field."""
        if isinstance(item, TrajectoryError):
            raise item
        traj = Trajectory.from_json(item, path=self.path, lineno=lineno, vocab_size=self.vocab_size)
        first = self.first_line.get(traj.id)
        if first is not None:
            raise TrajectoryError(self.path, lineno, "id", f"duplicate id {traj.id!r} (first on line {first})")
        self.first_line[traj.id] = lineno
        return traj


def utf8_error(path: str | Any) -> TrajectoryError | None:
    """The first line of a file that is not UTF-8, as a `TrajectoryError`, or None.

    What a reader reports when decoding a file failed part-way: the exact line and column.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                return TrajectoryError(str(path), lineno, "text", problem)
    return None


def response_token_count(traj: Trajectory) -> int:
    """Number of response tokens before the first EOS.

    Uses `settings.eos_token_id` when the file records it. Otherwise the EOS id is taken to be
    the last response id (the ids are EOS-padded) and the count is G minus the trailing run of
    that id; a response that filled all G positions without EOS then counts one short.
    """
    ids = traj.response_token_ids
    eos = traj.settings.get("eos_token_id")
    if eos is not None:
        return ids.index(eos) if eos in ids else len(ids)
    n = len(ids)
    while n > 0 and ids[n - 1] == ids[-1]:
        n -= 1
    return n
