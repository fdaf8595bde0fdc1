"""Built-in, procedurally generated task families with verifiers, and a code sandbox.

    from tabom.tasks import get_family
    fam = get_family("math_linear")
    probs = fam.problems("test", 100, seed=0)
    fam.verify(probs[0], probs[0].native)   # True

Families: math_chain, math_linear (math); code_trace, code_func (code);
ood_format, ood_string (ood). Importing this package does not import torch.
"""

from tabom.tasks.base import Problem, TaskFamily
from tabom.tasks.registry import FAMILIES, families_for, get_family, mixture

__all__ = ["Problem", "TaskFamily", "get_family", "FAMILIES", "families_for", "mixture"]
