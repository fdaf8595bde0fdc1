"""The `tabom` command: one verb per module in `tabom.commands`, each a thin typed function.

    tabom eval --model tiny --tasks math_chain,code_trace
    tabom generate --model tiny --task math_chain --n 500 --out traj.jsonl
    tabom data inspect traj.jsonl
    tabom train --recipe tiny_tabom

Command modules import torch and transformers only inside their function bodies, so
`tabom --help` stays fast.
"""

from __future__ import annotations

import typer

from tabom.commands.data import data_app
from tabom.commands.evaluate import eval_command
from tabom.commands.export import export
from tabom.commands.generate import generate
from tabom.commands.lm_eval import lm_eval_command
from tabom.commands.pretrain import pretrain
from tabom.commands.reproduce import reproduce
from tabom.commands.tds import tds
from tabom.commands.train import train

app = typer.Typer(
    name="tabom",
    help="Post-train masked diffusion LMs with TABOM (Trajectory-Aligned Optimization via Boltzmann Modeling).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# (verb, command): a typer.Typer becomes a command group; `context_settings` on a function (lm-eval,
# tds) reaches typer.
COMMANDS: list[tuple[str, object]] = [
    ("pretrain", pretrain),
    ("eval", eval_command),
    ("data", data_app),
    ("generate", generate),
    ("train", train),
    ("tds", tds),
    ("lm-eval", lm_eval_command),
    ("reproduce", reproduce),
    ("export", export),
]
for _verb, _command in COMMANDS:
    if isinstance(_command, typer.Typer):
        app.add_typer(_command, name=_verb)
    else:
        app.command(_verb, context_settings=getattr(_command, "context_settings", None))(_command)


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
