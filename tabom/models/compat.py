"""The transformers versions tabom can carry, checked before a model is built.

tabom builds Dream, LLaDA and the tiny model as transformers `Qwen2`/`Llama` backbones and passes
the rotary base as `rope_parameters`, the configuration field of transformers 5. transformers 4.x
accepts that keyword silently and keeps its own default base (10,000), so a Dream checkpoint
(base 1,000,000) would load and compute wrong logits without a word. `require_transformers()`
refuses such a version with one line instead; the supported range is the one pyproject declares.

    >>> require_transformers("5.25.0")  # passes
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

SUPPORTED = (Version("5.0.0"), Version("6.0.0"))  # [low, high), as pyproject.toml declares


class UnsupportedTransformers(ValueError):
    """The installed transformers cannot build tabom's models faithfully."""


def require_transformers(version: str | None = None) -> None:
    """Raise `UnsupportedTransformers` unless `version` (default: the installed one) is supported."""
    if version is None:
        import transformers

        version = transformers.__version__
    try:
        parsed = Version(version)
    except InvalidVersion as exc:
        raise UnsupportedTransformers(f"cannot read the transformers version {version!r}") from exc
    low, high = SUPPORTED
    if not low <= Version(parsed.base_version) < high:
        raise UnsupportedTransformers(
            f"transformers {version} is installed; tabom needs >={low},<{high} (its models pass the rotary "
            f"base as transformers 5's rope_parameters, which 4.x ignores, giving wrong logits): "
            f"pip install 'transformers>={low},<{high}'"
        )
