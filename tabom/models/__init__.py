"""Model layer: `load(name_or_path) -> DiffusionLM`, `save`, and the built-in tiny model."""

from tabom.models.diffusion_lm import DiffusionLM
from tabom.models.loading import load, save
from tabom.models.tiny import build_tiny

__all__ = ["DiffusionLM", "build_tiny", "load", "save"]
