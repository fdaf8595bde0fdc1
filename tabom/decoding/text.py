"""Text in, text out: the one place the decoding layer touches strings.

It needs only two methods of the model: ``encode_prompt(text) -> list[int]`` (chat template
applied by the model layer) and ``decode(ids) -> str`` (which cuts at the first EOS).

    >>> generate_text(model, ["What is 2+3?"], gen_length=32, steps=32, strategy="entropy")
    ['5']
"""

from __future__ import annotations

from typing import Any

from .engine import generate


def generate_text(model: Any, texts: list[str], **kwargs: Any) -> list[str]:
    """Encode ``texts``, run :func:`tabom.decoding.generate` with ``kwargs``, decode each response.

    Returns:
        One string per text, in order.
    """
    prompts = [model.encode_prompt(text) for text in texts]
    result = generate(model, prompts, **kwargs)
    return [model.decode(row.tolist()) for row in result.tokens]
