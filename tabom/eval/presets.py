"""The paper's inference settings (Appendix B, Table 8) as named presets.

    settings = apply_preset(DecodeSettings(), "dream-gsm8k")    # gen 256, steps 256, T 0.1, top-p 0.9
    settings = apply_preset(DecodeSettings(), "llada-mbpp", overrides={"steps": 128})

A preset fixes the decoding of one base model on one benchmark; explicit values in
``overrides`` (the command line's flags) win over it. Strategy: entropy for Dream, confidence for
LLaDA (the models' defaults, Section 4). Table 8 lists top-p 0.9 for LLaDA too, but LLaDA decodes
greedily (temperature 0), where top-p cannot change the argmax, and tabom's confidence rule takes
no top-p, so it is left unset there. IFEval has no column in Table 8: its presets reuse the
GSM8K settings of the same model (see docs/deviations.md).

The ``release-*`` presets are the release's own scripts instead (``release_eval/eval_tabom.sh``
for Dream, ``eval_tabom_llada.sh`` for LLaDA): they go with ``--protocol release`` (lm-eval's
tasks, :mod:`tabom.tasks.release_protocol`), which they select by default. Where the scripts and
Table 8 differ the release presets follow the scripts: Dream MBPP 512 tokens (Table 8: 1024),
LLaDA GSM8K 256 tokens (Table 8: 512), IFEval 512 tokens, LLaDA IFEval with the entropy rule.
The LLaDA scripts' ``logits_eos_inf`` (HumanEval) and ``confidence_eos_eot_inf`` (MBPP) switches
are not reproduced (docs/deviations.md).

The ``fast-*`` presets are the paper's (and ``fast-tiny`` the tiny model's defaults) with fast
decoding: blocks of 32 (2 of the tiny model's 64 tokens), the dual key/value cache and threshold 0.9, Fast-dLLM's
defaults (figures in docs/benchmarks.md, ``bench/fast_decode.py``).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

# Table 8: (gen_length = max new tokens, steps, block_length, temperature, top_p)
_DREAM = {"gsm8k": (256, 256, None), "math500": (512, 512, None), "mbpp": (1024, 1024, None),
          "humaneval": (768, 768, None)}
_LLADA = {"gsm8k": (512, 512, 8), "math500": (512, 512, 64), "mbpp": (256, 256, 256),
          "humaneval": (512, 512, 512)}
# The release's scripts: (gen_length, steps, block_length[, strategy])
_RELEASE_DREAM = {"gsm8k": (256, 256, None), "math500": (512, 512, None), "humaneval": (768, 768, None),
                  "mbpp": (512, 512, None), "ifeval": (512, 512, None)}
_RELEASE_LLADA = {"gsm8k": (256, 256, 8), "math500": (512, 512, 64), "humaneval": (512, 512, 512),
                  "mbpp": (256, 256, 256), "ifeval": (512, 512, 512)}


# Fast decoding beside the paper's settings: Fast-dLLM's defaults (blocks of 32, dual cache, threshold
# 0.9) on top of each Table 8 preset (32 divides every gen_length there) and of the tiny model's defaults.
FAST: dict[str, Any] = {"block_length": 32, "cache": "dual", "threshold": 0.9, "tokens_per_step": None}


def _build() -> dict[str, dict[str, Any]]:
    presets: dict[str, dict[str, Any]] = {}
    for bench, (gen, steps, block) in _DREAM.items():
        presets[f"dream-{bench}"] = {"gen_length": gen, "steps": steps, "block_length": block,
                                     "strategy": "entropy", "temperature": 0.1, "top_p": 0.9, "top_k": None}
    for bench, (gen, steps, block) in _LLADA.items():
        presets[f"llada-{bench}"] = {"gen_length": gen, "steps": steps, "block_length": block,
                                     "strategy": "confidence", "temperature": 0.0, "top_p": None, "top_k": None}
    presets["dream-ifeval"] = dict(presets["dream-gsm8k"])
    presets["llada-ifeval"] = dict(presets["llada-gsm8k"])
    for bench, (gen, steps, block) in _RELEASE_DREAM.items():
        presets[f"release-dream-{bench}"] = dict(presets["dream-gsm8k"], gen_length=gen, steps=steps,
                                                 block_length=block)
    for bench, (gen, steps, block) in _RELEASE_LLADA.items():
        presets[f"release-llada-{bench}"] = dict(presets["llada-gsm8k"], gen_length=gen, steps=steps,
                                                 block_length=block)
    presets["release-llada-ifeval"]["strategy"] = "entropy"  # eval_tabom_llada.sh: alg=entropy for ifeval
    for name in [n for n in presets if not n.startswith("release-")]:
        presets[f"fast-{name}"] = dict(presets[name], **FAST)
    presets["fast-tiny"] = {"gen_length": 64, "steps": 64, "strategy": "entropy", "temperature": 0.0,
                            "top_p": None, "top_k": None, **FAST}
    return presets


PRESETS: dict[str, dict[str, Any]] = _build()


def preset_protocol(name: str | None) -> str:
    """The evaluation protocol a preset belongs to: ``release`` for ``release-*``, else ``tabom``."""
    return "release" if name is not None and name.startswith("release-") else "tabom"


def release_preset(family: str, benchmark: str) -> str:
    """The release preset of a model family (``dream``/``llada``; tiny uses Dream's) on a benchmark."""
    name = f"release-{'llada' if family == 'llada' else 'dream'}-{benchmark}"
    if name not in PRESETS:
        raise ValueError(f"preset: no release preset for benchmark {benchmark!r}")
    return name


def preset_names() -> list[str]:
    """The name of every preset, sorted."""
    return sorted(PRESETS)


def apply_preset(settings: Any, name: str | None, overrides: dict[str, Any] | None = None) -> Any:
    """A copy of the dataclass ``settings`` with preset ``name`` and then ``overrides`` applied.

    ``overrides`` holds only the values given explicitly (None means "not given" and is skipped).
    """
    values: dict[str, Any] = {}
    if name is not None:
        if name not in PRESETS:
            raise ValueError(f"preset: unknown {name!r} (known: {', '.join(preset_names())})")
        values.update(PRESETS[name])
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = set(asdict(settings))
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"preset: fields {sorted(unknown)} are not decode settings")
    return replace(settings, **values)
