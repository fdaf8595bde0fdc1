"""DecodeSettings: validation and the model-dependent defaults (shared by eval, tds and generate)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tabom.decoding.settings import DecodeSettings
from tabom.trajectories.builder import BuildConfig

TINY = SimpleNamespace(default_gen_length=64, default_strategy="entropy")


def test_resolved_fills_full_diffusion_decoding_from_the_model():
    s = DecodeSettings().resolved(TINY)
    assert (s.gen_length, s.steps, s.strategy, s.tokens_per_step) == (64, 64, "entropy", 1)
    half = DecodeSettings(gen_length=32, steps=16, strategy="confidence").resolved(TINY)
    assert (half.gen_length, half.steps, half.strategy, half.tokens_per_step) == (32, 16, "confidence", None)


def test_build_config_keeps_its_class_and_fields_when_resolved():
    cfg = BuildConfig(keep="all", tokens_per_step=2).resolved(TINY)
    assert isinstance(cfg, BuildConfig) and cfg.keep == "all" and cfg.tokens_per_step == 2
    assert cfg.batch_size == 32 and DecodeSettings().batch_size == 64


@pytest.mark.parametrize("kwargs, field", [
    ({"strategy": "greedy"}, "strategy"), ({"steps": 0}, "steps"), ({"top_k": 0}, "top_k"),
    ({"temperature": -1.0}, "temperature"), ({"top_p": 1.5}, "top_p"), ({"batch_size": 0}, "batch_size"),
])
def test_bad_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DecodeSettings(**kwargs)
    with pytest.raises(ValueError, match=field):
        BuildConfig(**kwargs)


def test_build_config_checks_its_own_fields():
    with pytest.raises(ValueError, match="keep"):
        BuildConfig(keep="some")
    with pytest.raises(ValueError, match="samples_per_prompt"):
        BuildConfig(samples_per_prompt=2)  # greedy samples would be identical


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": float("nan")}, "temperature: must be a finite number"),
    ({"temperature": float("inf")}, "temperature: must be a finite number"),
])
def test_non_finite_temperature_is_refused_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodeSettings(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"block_length": 5}, "block_length: gen_length 64 is not a multiple of block_length 5"),
    ({"block_length": 16, "steps": 6}, "steps: 6 is not a multiple of the number of blocks 4"),
    ({"strategy": "confidence", "top_p": 0.9}, "top_p/top_k: not used by the confidence strategy"),
])
def test_resolved_refuses_settings_that_cannot_decode_together(kwargs, message):
    """What the engine would refuse at its first batch is refused when the model's defaults are
    filled in, so `tabom generate` / `eval` fail before they create any output."""
    with pytest.raises(ValueError, match=message):
        DecodeSettings(**kwargs).resolved(TINY)
