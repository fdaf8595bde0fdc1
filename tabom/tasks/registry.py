"""Name -> task family lookup, and the all-families mixture used to pre-train the tiny model.

    fam = get_family("code_trace", loop_range=(2, 3))
    corpus = mixture("train", n_per_family=2000, seed=0)
    families_for("math")   # ["math_chain", "math_linear"]
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from tabom.tasks.base import DOMAINS, Problem, TaskFamily
from tabom.tasks.code_func import CodeFunc
from tabom.tasks.code_trace import CodeTrace
from tabom.tasks.math_chain import MathChain
from tabom.tasks.math_linear import MathLinear
from tabom.tasks.ood_format import OodFormat
from tabom.tasks.ood_string import OodString

_CLASSES: dict[str, type[TaskFamily]] = {
    cls.name: cls for cls in (MathChain, MathLinear, CodeTrace, CodeFunc, OodFormat, OodString)
}
FAMILIES: dict[str, str] = {name: cls.domain for name, cls in _CLASSES.items()}


def get_family(name: str, **kwargs: Any) -> TaskFamily:
    """The family registered as ``name``, built with ``kwargs`` (its difficulty knobs)."""
    if name not in _CLASSES:
        raise ValueError(f"get_family: name: unknown task family {name!r}; known: {sorted(_CLASSES)}")
    try:
        return _CLASSES[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"get_family: {name}: bad constructor arguments {sorted(kwargs)}: {err}") from err


def families_for(domain: str) -> list[str]:
    """Names of the families of one domain ("math" | "code" | "ood"), in registry order."""
    if domain not in DOMAINS:
        raise ValueError(f"families_for: domain: {domain!r} is not one of {DOMAINS}")
    return [name for name, dom in FAMILIES.items() if dom == domain]


def mixture(
    split: str,
    n_per_family: int,
    seed: int = 0,
    *,
    families: list[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    cycle: bool = False,
) -> list[Problem]:
    """``n_per_family`` problems of ``split`` from each family, shuffled together (deterministic).

    ``families`` restricts the mixture (default: all); ``options`` maps a family
    name to its constructor arguments, e.g. ``{"math_chain": {"max_ops": 2}}``.
    With ``cycle``, a family that has fewer distinct problems of ``split`` repeats
    them to fill its ``n_per_family`` (pre-training keeps the families balanced);
    without, it raises ``ValueError``.
    """
    names = list(FAMILIES) if families is None else list(families)
    options = options or {}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"mixture: options: {unknown} are not among the mixed families {names}")
    out: list[Problem] = []
    for name in names:
        found = get_family(name, **options.get(name, {})).problems(split, n_per_family, seed, at_most=cycle)
        if not found and n_per_family:
            raise ValueError(f"mixture: {name}: no {split} problems at all with options {options.get(name, {})}")
        out.extend(itertools.islice(itertools.cycle(found), n_per_family))
    random.Random(f"mixture|{split}|{seed}").shuffle(out)
    return out
