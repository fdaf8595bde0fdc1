"""Which protocol produced a number, and how a protocol's prompt becomes token ids.

    ids = encode_eval_prompt(model, rp.humaneval_prompt(code))   # template(user) + tokens of the prefix
    protocol_for(preset="release-dream-gsm8k", given=None)       # 'release'

``tabom eval --protocol tabom`` (the default without a release preset) shows tabom's zero-shot
prompts; ``--protocol release`` the release's lm-eval tasks (:mod:`tabom.tasks.release_protocol`).
Results record the protocol beside every number.
"""

from __future__ import annotations

from typing import Any

from tabom.tasks.release_protocol import check_protocol


def encode_eval_prompt(model: Any, prompt: str) -> list[int]:
    """The ids of ``prompt``'s templated user turn, then its ``gen_prefix`` (if any) without special tokens.

    lm-eval places ``gen_prefix`` after the chat template's generation prompt; the response the
    model writes continues it.
    """
    ids = list(model.encode_prompt(str(prompt)))
    prefix = getattr(prompt, "gen_prefix", "")
    if prefix:
        ids += [int(i) for i in model.tokenizer.encode(prefix, add_special_tokens=False)]
    return ids


def protocol_for(preset: str | None, given: str | None) -> str:
    """The protocol of a run: ``given`` when set (checked), else the preset's (``release-*``: release)."""
    from tabom.eval.presets import preset_protocol  # noqa: PLC0415

    if given is not None:
        protocol = check_protocol(given)
        if preset is not None and preset_protocol(preset) != protocol:
            raise ValueError(f"protocol: preset {preset!r} belongs to the {preset_protocol(preset)!r} protocol, "
                             f"not {protocol!r}")
        return protocol
    return preset_protocol(preset)
