"""The authors' released trajectory files: their four line layouts, read into tabom's `Trajectory`.

The release's trainer (`dream_post/train_tabom.py`, `load_local_jsonl_items`) takes the
prompt/response pair of a line from the first layout present:

| layout | prompt | response |
|---|---|---|
| `prompt` | `prompt` | `response`, else `output` |
| `instruction` | `instruction` | `output`, else `response` |
| `messages` | first `user` message's `content` | first `assistant` message's `content` |
| `question` | `question` | `gen_text`, else `answer`, `output`, `response` |

and optionally `response_token_ids`, `decoding_order`, `non_ltr_positions`, `data_source` and
`method` (any value: `entropy`, `default`, `credit`, ...). It reads no `id`, no
`prompt_token_ids`, no `correct` and no settings. A line is a *release line* when it has neither
`prompt_token_ids` nor `settings` (tabom writes both); tabom derives the rest:

- `id`: `rel-` + the first 16 hex digits of the SHA-256 of the line's JSON (keys sorted), so the
  same line always gets the same id;
- `prompt_token_ids`: the prompt through the training model's tokenizer and chat template
  (`DiffusionLM.encode_prompt`), at training time;
- `response_token_ids`: as given, else the response text tokenized (no special tokens); then
  EOS-padded to `data.gen_length`;
- `decoding_order`: as given (its length must equal the tokenized response's), else left to right
  (0, 1, 2, ...: the release's own fallback when a line has none); padding positions get -1;
- `correct: null`, `model`: the training model, `settings: {gen_length}`; a line without
  `method` or `data_source` gets `unknown`.

One difference from the release: a response key that is present but empty (`"gen_text": ""`) is
taken as the (empty) response; the release's truthiness test would fall through to `answer`, the
reference, and train on it as if the model had decoded it.

    rec = parse_release(obj, path="dream_prm12k.jsonl", lineno=3)       # layout checks only
    traj = release_trajectory(obj, model, gen_length=256, path=..., lineno=3)   # for training

Bad lines raise `TrajectoryError` (`FILE:LINE: field: problem`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from tabom.trajectories.schema import Trajectory, TrajectoryError

LAYOUTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("prompt", ("response", "output")),
    ("instruction", ("output", "response")),
    ("messages", ()),
    ("question", ("gen_text", "answer", "output", "response")),
)
"""(prompt key, response keys in order of preference), in the order the release tries them."""

DERIVED: tuple[str, ...] = (
    "id (SHA-256 of the line)",
    "prompt_token_ids (the model's tokenizer and chat template, at training time)",
    "correct: null",
    "settings (gen_length of the recipe)",
)
"""What tabom derives for every release line (`tabom data inspect` lists these)."""

RELEASE_MODEL = "(release file)"
"""The `model` of a release line read without a model (inspection)."""


@dataclass(frozen=True)
class ReleaseRecord:
    """One release line, checked: the pair, the optional per-line fields and what was derived."""

    id: str
    prompt: str
    response: str
    layout: str
    method: str
    data_source: str
    response_token_ids: list[int] | None
    decoding_order: list[int] | None
    non_ltr_positions: list[int] | None
    extra: dict[str, Any]

    def derived(self) -> list[str]:
        """The fields tabom derives for this line (the common ones, plus its own)."""
        out = list(DERIVED)
        if self.response_token_ids is None:
            out.append("response_token_ids (the response text tokenized, at training time)")
        if self.decoding_order is None:
            out.append("decoding_order (left to right, the release's fallback)")
        return out


def is_release_line(obj: Any) -> bool:
    """True for a JSON object in a release layout rather than tabom's (no prompt_token_ids, no settings)."""
    return isinstance(obj, dict) and "prompt_token_ids" not in obj and "settings" not in obj


def content_id(obj: dict[str, Any]) -> str:
    """'rel-' + 16 hex digits of the SHA-256 of the object's JSON with sorted keys."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "rel-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _first_content(messages: Any, role: str, err: Any) -> str | None:
    if not isinstance(messages, list):
        raise err("messages", f"expected a list of {{role, content}} objects, got {type(messages).__name__}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise err(f"messages[{i}]", f"expected an object, got {type(message).__name__}")
        if message.get("role") == role:
            content = message.get("content")
            if not isinstance(content, str):
                raise err(f"messages[{i}].content", f"expected a string, got {type(content).__name__}")
            return content
    return None


def _pair(obj: dict[str, Any], err: Any) -> tuple[str, str, str]:
    """(layout, prompt, response) from the first layout present, as the release picks it."""
    for prompt_key, response_keys in LAYOUTS:
        if prompt_key == "messages":
            if "messages" not in obj:
                continue
            prompt = _first_content(obj["messages"], "user", err)
            response = _first_content(obj["messages"], "assistant", err)
            if prompt is None or response is None:
                missing = "user" if prompt is None else "assistant"
                raise err("messages", f"no {missing} message (the release takes the first user and assistant ones)")
            return "messages", prompt, response
        if prompt_key not in obj:
            continue
        key = next((k for k in response_keys if obj.get(k) is not None), None)
        if key is None:
            raise err(response_keys[0], f"required with {prompt_key!r} (or {', '.join(response_keys[1:])})")
        for name in (prompt_key, key):
            if not isinstance(obj[name], str):
                raise err(name, f"expected a string, got {type(obj[name]).__name__}")
        return prompt_key, obj[prompt_key], obj[key]
    raise err(
        "prompt",
        "no prompt/response pair: expected prompt + response|output, instruction + output|response, "
        "messages, or question + gen_text|answer|output|response",
    )


def _ints(obj: dict[str, Any], key: str, err: Any, low: int) -> list[int] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise err(key, f"expected a list of ints, got {type(value).__name__}")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or item < low:
            raise err(key, f"item {i} is {item!r}, expected an int >= {low}")
    return list(value)


def parse_release(obj: Any, path: str = "<memory>", lineno: int = 0) -> ReleaseRecord:
    """Check one release line (layout, types, lengths that need no tokenizer); raise `TrajectoryError`."""

    def err(field: str, problem: str) -> TrajectoryError:
        return TrajectoryError(str(path), lineno, field, problem)

    if not isinstance(obj, dict):
        raise err("json", f"expected a JSON object, got {type(obj).__name__}")
    layout, prompt, response = _pair(obj, err)
    for key in ("method", "data_source"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise err(key, f"expected a string, got {type(obj[key]).__name__}")
    ids = _ints(obj, "response_token_ids", err, 0)
    order = _ints(obj, "decoding_order", err, -1)
    non_ltr = _ints(obj, "non_ltr_positions", err, 0)
    if ids is not None and not ids:
        raise err("response_token_ids", "must not be empty")
    if ids is not None and order is not None and len(order) != len(ids):
        raise err("decoding_order", f"has {len(order)} entries but response_token_ids has {len(ids)}")
    length = len(ids) if ids is not None else len(order) if order is not None else None
    if non_ltr is not None and length is not None:
        outside = [p for p in non_ltr if p >= length]
        if outside:
            raise err("non_ltr_positions", f"position {outside[0]} is outside [0, {length})")
    used = {"prompt", "response", "output", "instruction", "messages", "question", "gen_text",
            "method", "data_source", "response_token_ids", "decoding_order", "non_ltr_positions"}
    return ReleaseRecord(
        id=content_id(obj), prompt=prompt, response=response, layout=layout,
        method=obj.get("method") or "unknown", data_source=obj.get("data_source") or "unknown",
        response_token_ids=ids, decoding_order=order, non_ltr_positions=non_ltr,
        extra={k: v for k, v in obj.items() if k not in used},
    )


def inspection_trajectory(rec: ReleaseRecord) -> Trajectory:
    """A `Trajectory` view of a release line for `tabom data inspect` (no tokenizer: prompt ids
    empty, response ids as given or none, `correct` null, no settings)."""
    return Trajectory(
        id=rec.id, prompt=rec.prompt, response=rec.response, prompt_token_ids=[],
        response_token_ids=list(rec.response_token_ids or []), decoding_order=list(rec.decoding_order or []),
        method=rec.method, data_source=rec.data_source, correct=None, model=RELEASE_MODEL, settings={},
        non_ltr_positions=rec.non_ltr_positions, extra=dict(rec.extra),
    )


def release_trajectory(obj: Any, model: Any, gen_length: int, path: str = "<memory>", lineno: int = 0,
                       drop_long: bool = False) -> Trajectory | None:
    """A release line as a full tabom `Trajectory` for `model` (a `DiffusionLM`), G = `gen_length`.

    Raises `TrajectoryError` when `decoding_order` differs in length from the tokenized response,
    a given response id is outside the model's vocabulary, or the response does not fit
    `gen_length` (None instead with `drop_long`).
    """
    rec = parse_release(obj, path, lineno)
    ids = rec.response_token_ids
    if ids is None:
        ids = [int(i) for i in model.tokenizer.encode(rec.response, add_special_tokens=False)]
        if not ids:
            ids = [int(model.eos_token_id)]
    vocab = getattr(model, "vocab_size", None)
    outside = next((i for i in ids if vocab is not None and i >= vocab), None)
    if outside is not None:
        raise TrajectoryError(str(path), lineno, "response_token_ids",
                              f"id {outside} is outside the model's vocabulary of {vocab}")
    order = rec.decoding_order
    if order is None:
        order = list(range(len(ids)))
    elif len(order) != len(ids):
        raise TrajectoryError(str(path), lineno, "decoding_order",
                              f"has {len(order)} entries but the tokenized response has {len(ids)} tokens")
    if len(ids) > gen_length:
        if drop_long:
            return None
        raise TrajectoryError(str(path), lineno, "response",
                              f"{len(ids)} tokens do not fit data.gen_length={gen_length} (raise it or set data.drop_long)")
    pad = gen_length - len(ids)
    return Trajectory(
        id=rec.id, prompt=rec.prompt, response=rec.response,
        prompt_token_ids=[int(i) for i in model.encode_prompt(rec.prompt)],
        response_token_ids=list(ids) + [int(model.eos_token_id)] * pad, decoding_order=list(order) + [-1] * pad,
        method=rec.method, data_source=rec.data_source, correct=None, model=str(getattr(model, "name", "")),
        settings={"gen_length": gen_length}, non_ltr_positions=rec.non_ltr_positions, extra=dict(rec.extra),
    )


def keep_method(method: str, methods: list[str] | tuple[str, ...] | None) -> bool:
    """The release's method filter: keep every row when `methods` is None, else rows whose method is listed."""
    return methods is None or method in methods
