"""Every test, and every fixture it sets up first, starts from the same global random state.

The global generators are not the same from one pytest process to the next (with torch 2.13,
``python -c "import torch; print(torch.initial_seed())"`` prints a new number every time), and
libraries draw from them without being asked: peft's LoRA init takes ``lora_A`` from torch's. Without this, a test's random model could
differ with the tests run before it and with the run: CI once failed on one state in about a
hundred. tabom's own code seeds its own generators; this only fixes what the tests leave open.
"""

from __future__ import annotations

import random

import pytest
import torch


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the item's fixtures (session-scoped ones too) are set up."""
    random.seed(0)
    torch.manual_seed(0)
