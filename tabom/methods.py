"""Recipes by composition: a model/data recipe plus a method, and switching `objective.name`.

A recipe may carry a `methods:` section (a mapping method -> partial recipe, or the name of a
YAML file of such blocks, e.g. `paper_methods`, looked up beside the recipe and in the built-in
recipe folder) and a `method:` key choosing one. The chosen block is merged over the recipe
before it is built; an `objective` block that names an objective replaces the recipe's
objective section as a whole (another objective's fields never leak into it).

    # tabom/recipes/dream_prm12k.yaml: Dream + PRM12K with TABOM's settings, and
    methods: paper_methods        # sft_gt, sft_sd, dinfer, t3d (tabom/recipes/methods/paper.yaml)
    method: tabom                 # `tabom` (or no block of that name): the recipe as written

    tabom train --recipe dream_prm12k method=t3d model=/ckpt/Dream data.path=d.jsonl
    tabom train --recipe dream_prm12k objective.name=nelbo          # SFT-SD by switching the objective

`objective.name=X` on the command line keeps only the recipe's objective fields that `X` has
(explicit `objective.k=v` overrides are kept and checked as usual), so switching the objective
of any recipe works. `compose` returns the raw mapping and the remaining overrides; the recipe's
key -> line map is updated so errors inside a method block still name its line.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

RECIPE_DIRS: tuple[Path, ...] = (Path(__file__).resolve().parent / "recipes",)
"""Where `--recipe NAME` (no `.yaml`, no folder) and a `methods:` file name are looked up: the
recipes shipped in the package (`tabom/recipes/`, the only copy). `tabom.config` re-exports it."""

BASE_METHOD = "tabom"
"""A method with no block of its own: the recipe as written."""


def _load_blocks(spec: Any, recipe_path: Path | None) -> tuple[dict[str, Any], str, dict[str, int | str]]:
    """The method blocks of `methods:` (a mapping, or a YAML file name), their source and lines."""
    from tabom.typed_yaml import ConfigError, line_map, load_yaml, read_text

    if isinstance(spec, dict):
        return spec, "", {}
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"methods: expected a mapping of method blocks or a YAML file name, got {spec!r}")
    name = spec if spec.endswith((".yaml", ".yml")) else f"{spec}.yaml"
    folders = ([recipe_path.parent] if recipe_path is not None else []) + list(RECIPE_DIRS)
    for folder in folders:
        path = folder / name
        if path.is_file():
            text = read_text(path, "methods YAML file")
            blocks = load_yaml(text, str(path)) or {}
            if not isinstance(blocks, dict):
                raise ConfigError(f"{path}: expected a mapping of method blocks")
            return blocks, str(path), dict(line_map(text))
    raise ConfigError(f"methods: {spec!r}: no such file beside the recipe or among the built-in recipes")


def _merge(base: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of `block` over `base`; an objective block with a `name` replaces the section."""
    out = dict(base)
    for key, value in block.items():
        if key == "objective" and isinstance(value, dict) and "name" in value:
            out[key] = dict(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _objective_fields(name: str) -> set[str] | None:
    """The config fields of objective `name` (None when the name is unknown: validation reports it)."""
    from tabom.objectives import get_objective

    try:
        return set(typing.get_type_hints(get_objective(name).config_cls))
    except ValueError:
        return None


def _flat_block(block: dict[str, Any]) -> dict[str, Any]:
    """`objective: {name, k: v}` inside a block -> `{name, params: {k: v}}`, as recipes are read."""
    section = block.get("objective")
    if isinstance(section, dict):
        params = dict(section.get("params") or {})
        params.update({k: v for k, v in section.items() if k not in ("name", "params")})
        block = {**block, "objective": {"name": section.get("name", "tabom"), "params": params}}
    return block


def compose(raw: dict[str, Any], overrides: list[str], lines: dict[str, int | str],
            recipe_path: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """Apply `method` / `methods` and the objective switch to a recipe mapping (objective flattened).

    Returns the composed mapping (without `method`/`methods`) and the overrides still to apply.
    Raises `ConfigError` for an unknown method or a bad `methods:` section.
    """
    from tabom.typed_yaml import ConfigError, parse_override

    raw = dict(raw)
    spec = raw.pop("methods", None)
    method = raw.pop("method", None)
    rest: list[str] = []
    for item in overrides:
        key, value = parse_override(item)
        if key == "method":
            method = value
            lines["method"] = f"override {item}"
        else:
            rest.append(item)
    if method is not None:
        blocks, source, block_lines = _load_blocks(spec or {}, recipe_path)
        loc = lines.get("method")
        at = loc if isinstance(loc, str) else f"{recipe_path}:{loc}" if loc and recipe_path else str(recipe_path or "recipe")
        if not isinstance(method, str):
            raise ConfigError(f"{at}: method: expected a name, got {method!r}")
        if method in blocks:
            block = blocks[method]
            if not isinstance(block, dict):
                raise ConfigError(f"{source or 'methods'}: {method}: expected a mapping (a partial recipe)")
            raw = _merge(raw, _flat_block(block))
            prefix = f"methods.{method}." if not source else f"{method}."
            table = lines if not source else block_lines
            for key, line in list(table.items()):
                if key.startswith(prefix):
                    lines[key[len(prefix):]] = f"{source}:{line}" if source else line
        elif method != BASE_METHOD:
            known = ", ".join([BASE_METHOD, *sorted(blocks)])
            raise ConfigError(f"{at}: method: {method!r} is not one of {known}")
    for item in rest:  # objective.name=X: keep only the fields X has
        key, value = parse_override(item)
        section = raw.get("objective")
        if key == "objective.name" and isinstance(section, dict) and section.get("name") != value:
            fields = _objective_fields(str(value))
            params = section.get("params") or {}
            if fields is not None:
                raw["objective"] = {"name": value, "params": {k: v for k, v in params.items() if k in fields}}
    return raw, rest
