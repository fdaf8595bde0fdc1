"""Training objectives as pure functions of tensors (they never call the model).

Each objective has an input builder ``make_*_inputs(batch, generator, cfg) -> NoisedBatch`` and
a loss ``*_loss(logits, noised, cfg) -> LossOutput`` over logits packed at
``noised.positions``. Select by name with :data:`OBJECTIVES` / :func:`get_objective`.
Read :mod:`tabom.objectives.ranking` and :mod:`tabom.objectives.tabom` first.
"""

from tabom.objectives.combine import OBJECTIVES, Objective, get_objective
from tabom.objectives.dinfer import DinferConfig, dinfer_loss, make_dinfer_inputs
from tabom.objectives.head import chunked_head_ce_entropy
from tabom.objectives.nelbo import NelboConfig, make_nelbo_inputs, mask_uniform, nelbo_loss
from tabom.objectives.ranking import entropy_rank_loss, token_entropy
from tabom.objectives.t3d import (
    T3DConfig,
    attach_reference,
    make_t3d_inputs,
    sample_fake_tokens,
    sequence_mean_logprob,
    t3d_loss,
)
from tabom.objectives.tabom import TabomConfig, make_tabom_inputs, tabom_loss, tabom_terms
from tabom.objectives.trajectory import TrajectoryConfig, make_trajectory_inputs, trajectory_loss
from tabom.objectives.types import LossOutput, NoisedBatch, ObjectiveBatch

__all__ = [
    "OBJECTIVES",
    "DinferConfig",
    "LossOutput",
    "NelboConfig",
    "NoisedBatch",
    "Objective",
    "ObjectiveBatch",
    "T3DConfig",
    "TabomConfig",
    "TrajectoryConfig",
    "attach_reference",
    "chunked_head_ce_entropy",
    "dinfer_loss",
    "entropy_rank_loss",
    "get_objective",
    "make_dinfer_inputs",
    "make_nelbo_inputs",
    "make_t3d_inputs",
    "make_tabom_inputs",
    "make_trajectory_inputs",
    "mask_uniform",
    "nelbo_loss",
    "sample_fake_tokens",
    "sequence_mean_logprob",
    "t3d_loss",
    "tabom_loss",
    "tabom_terms",
    "token_entropy",
    "trajectory_loss",
]
