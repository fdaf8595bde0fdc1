"""The objective registry: pick an objective by name from a recipe.

    obj = get_objective("tabom")
    cfg = obj.config_cls(**recipe_section)          # typed, validated in __post_init__
    noised = obj.make_inputs(batch, generator, cfg)
    logits = model(noised.input_ids, noised.attention_mask, positions=noised.positions)
    out = obj.loss(logits, noised, cfg)             # LossOutput(loss, metrics)

Names: ``nelbo`` (SFT-GT / SFT-SD), ``trajectory`` (trajectory-aware reconstruction only),
``tabom`` (the paper), ``dinfer``, ``t3d``. The "global timestep window" variants of Table 5
are ``trajectory`` / ``tabom`` with ``global_window: true``. ``t3d`` also needs
:func:`tabom.objectives.t3d.attach_reference` between the input builder and the loss
(``obj.needs_reference`` is True).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from tabom.objectives.dinfer import DinferConfig, dinfer_loss, make_dinfer_inputs
from tabom.objectives.nelbo import NelboConfig, make_nelbo_inputs, nelbo_loss
from tabom.objectives.t3d import T3DConfig, make_t3d_inputs, t3d_loss
from tabom.objectives.tabom import TabomConfig, make_tabom_inputs, tabom_loss
from tabom.objectives.trajectory import TrajectoryConfig, make_trajectory_inputs, trajectory_loss
from tabom.objectives.types import BatchLike, LossOutput, NoisedBatch

InputBuilder = Callable[[BatchLike, torch.Generator | None, Any], NoisedBatch]
LossFn = Callable[[Tensor, NoisedBatch, Any], LossOutput]


@dataclass(frozen=True)
class Objective:
    """One registered objective and every fact the rest of tabom asks about it.

    ``needs_reference``: the step runs a frozen reference model first (T3D);
    ``needs_trajectories``: it reads decode steps, so its data must be trajectory JSONL.
    """

    name: str
    make_inputs: InputBuilder
    loss: LossFn
    config_cls: type
    needs_reference: bool = False
    needs_trajectories: bool = False

    def config(self, **overrides: Any) -> Any:
        """Build the config from a recipe mapping; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"objective {self.name}: unknown config field(s) {unknown}; known: {sorted(known)}"
            )
        return self.config_cls(**overrides)


OBJECTIVES: dict[str, Objective] = {
    "nelbo": Objective("nelbo", make_nelbo_inputs, nelbo_loss, NelboConfig),
    "trajectory": Objective("trajectory", make_trajectory_inputs, trajectory_loss, TrajectoryConfig,
                            needs_trajectories=True),
    "tabom": Objective("tabom", make_tabom_inputs, tabom_loss, TabomConfig, needs_trajectories=True),
    "dinfer": Objective("dinfer", make_dinfer_inputs, dinfer_loss, DinferConfig, needs_trajectories=True),
    "t3d": Objective("t3d", make_t3d_inputs, t3d_loss, T3DConfig, needs_reference=True, needs_trajectories=True),
}


def get_objective(name: str) -> Objective:
    """Look an objective up by name; ``ValueError`` lists the known names."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective: unknown name {name!r}; known: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]
