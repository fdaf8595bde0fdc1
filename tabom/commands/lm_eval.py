"""`tabom lm-eval`: lm-evaluation-harness's own command line with the ``tabom`` model registered.

    tabom lm-eval --model tabom --model_args model=PATH,adapter=PATH,strategy=entropy,gen_length=256,steps=256 \
        --tasks gsm8k_cot --include_path my_tasks/ --output_path runs/lm_eval

Every argument after ``lm-eval`` is handed to lm-eval unchanged (``tabom lm-eval ls tasks`` works too).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer


def run_lm_eval(args: list[str]) -> None:
    """Register the ``tabom`` model and run lm-eval's command line on ``args``."""
    import tabom.eval.lm_eval_model  # noqa: F401, PLC0415  (registers "tabom")
    from lm_eval.__main__ import cli_evaluate  # noqa: PLC0415

    saved = sys.argv
    sys.argv = ["lm-eval", *args]
    try:
        cli_evaluate()
    finally:
        sys.argv = saved


def lm_eval_command(
    ctx: typer.Context,
    args: Optional[list[str]] = typer.Argument(None, help="Arguments for lm-eval, passed on unchanged."),
) -> None:
    """Run lm-evaluation-harness with tabom's diffusion LMs available as `--model tabom`."""
    run_lm_eval(list(args or []) + list(ctx.args))


# What `tabom.cli` should register the command with: lm-eval's options must reach it unparsed.
lm_eval_command.context_settings = {  # type: ignore[attr-defined]
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
}
