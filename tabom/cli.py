"""The `tabom` command: one verb per module in `tabom.commands`, each a thin typed function.

    tabom eval --model tiny --tasks math_chain,code_trace
    tabom generate --model tiny --task math_chain --n 500 --out traj.jsonl
    tabom data inspect traj.jsonl
    tabom train --recipe recipes/tiny_tabom.yaml

Command modules import torch and transformers only inside their function bodies, so
`tabom --help` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="tabom",
    help="Post-train masked diffusion LMs with TABOM (Trajectory-Aligned Optimization via Boltzmann Modeling).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# (module under tabom.commands, attribute, verb). A typer.Typer attribute becomes a command group.
COMMANDS: list[tuple[str, str, str]] = [
    ("pretrain", "pretrain", "pretrain"),
    ("evaluate", "eval_command", "eval"),
    ("data", "data_app", "data"),
    ("generate", "generate", "generate"),
    ("train", "train", "train"),
    ("tds", "tds", "tds"),
    ("lm_eval", "lm_eval_command", "lm-eval"),
    ("reproduce", "reproduce", "reproduce"),
    ("export", "export", "export"),
]


def _register() -> None:
    for module_name, attr, verb in COMMANDS:
        try:
            module = importlib.import_module(f"tabom.commands.{module_name}")
        except ModuleNotFoundError as exc:  # a verb whose module is not there yet stays absent
            if exc.name and exc.name.startswith("tabom.commands"):
                continue
            raise
        obj = getattr(module, attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=verb)
        else:
            app.command(verb, context_settings=getattr(obj, "context_settings", None))(obj)


_register()


def main() -> None:
    """Console entry point: an expected failure ends in one `error: ...` line and exit 2.

    Expected failures are bad input (`FILE:LINE: field: ...`), a file the system refuses (missing,
    a folder, no permission, read-only or full disk), a corrupt safetensors file, and the others
    `tabom.errors.failure_message` lists; anything else is a bug and keeps its traceback. Ctrl-C
    exits with 130 and no traceback. Set TABOM_DEBUG=1 to see the full traceback of every failure.
    """
    from tabom.errors import exit_on_failure

    exit_on_failure(app)


if __name__ == "__main__":
    main()
