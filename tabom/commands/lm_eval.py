"""`tabom lm-eval`: lm-evaluation-harness's own command line with the ``tabom`` model registered.

    tabom lm-eval --model tabom --model_args model=PATH,adapter=PATH,strategy=entropy,gen_length=256,steps=256 \
        --tasks gsm8k_cot --include_path my_tasks/ --output_path runs/lm_eval

Every argument after ``lm-eval`` is handed to lm-eval unchanged (``tabom lm-eval ls tasks`` works too).
One thing differs from ``lm-eval`` itself: when every name in ``--tasks`` is a task in
``--include_path`` or one of the release's tasks (``gsm8k_cot``, ``minerva_math500``, ...), lm-eval's
task index covers only those folders instead of all ~14,000 of its task files (the same tasks, a
start seconds shorter in every process; see :func:`tabom.eval.lm_eval_tasks.index_paths`). Set
``TABOM_LM_EVAL_FULL_INDEX=1`` to index everything as lm-eval does.

Under ``torchrun`` a task with fewer documents than processes stops every rank with exit 2 and one
``error:`` line naming the task and the counts (:func:`tabom.eval.sharding.check_world_fits`),
before any request is decoded or any file written, where lm-eval would leave a rank with no
documents to raise its own error while the others hang or crash in a collective.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer


def _narrow_paths(args: list[str]) -> list[Path] | None:
    """The folders to index for ``args``' ``--tasks`` (None: lm-eval's whole index)."""
    if os.environ.get("TABOM_LM_EVAL_FULL_INDEX", "").strip() not in ("", "0"):
        return None
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--tasks", "-t", nargs="+")
    parser.add_argument("--include_path")
    known, _ = parser.parse_known_args(args)
    if not known.tasks:
        return None
    from tabom.eval.lm_eval_tasks import index_paths  # noqa: PLC0415

    names = [t.strip() for item in known.tasks for t in item.split(",") if t.strip()]
    return index_paths(names, known.include_path)


@contextlib.contextmanager
def _narrow_task_index(paths: list[Path] | None) -> Iterator[None]:
    """While inside, lm-eval's ``TaskManager`` indexes only ``paths`` (nothing changes when None)."""
    import lm_eval.tasks  # noqa: PLC0415

    original = lm_eval.tasks.TaskManager
    if paths is None:
        yield
        return

    class NarrowTaskManager(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(include_path=[str(p) for p in paths], include_defaults=False)
            super().__init__(*args[:1], **kwargs)

    lm_eval.tasks.TaskManager = NarrowTaskManager  # lm-eval's CLI imports it from here when it runs
    try:
        yield
    finally:
        lm_eval.tasks.TaskManager = original


def task_documents(task: Any, limit: int | None, samples: list[int] | None) -> int:
    """How many documents lm-eval's ``Task.doc_iterator`` deals out over the ranks for these arguments."""
    if samples:
        return len(samples)
    n = len(task.eval_docs)
    return min(int(limit), n) if limit else n


def _stop_every_rank(message: str | None) -> None:
    """Leave this rank with exit 2 once every rank has decided to (``message``: printed first, on stderr).

    torchrun ends the ranks still running with SIGTERM as soon as one rank exits, which would record
    -15 for them: so every rank waits at a barrier (the group lm-eval's model created), turns SIGTERM
    into exit 2, and leaves at once. Nothing has been written yet, so no exit handler needs to run.
    """
    import signal  # noqa: PLC0415

    import torch.distributed as dist  # noqa: PLC0415

    if message:
        print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(2))
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    os._exit(2)


def _check_task_fits(task: Any, limit: int | None, samples: list[int] | None) -> None:
    """:func:`check_world_fits` on ``task``'s documents; on failure every rank exits 2 (local rank 0
    prints the one ``error:`` line)."""
    from tabom.errors import failure_message  # noqa: PLC0415
    from tabom.eval.sharding import check_world_fits  # noqa: PLC0415

    where = "lm-eval" + (" --samples" if samples else f" --limit {limit}" if limit else "")
    try:
        check_world_fits({f"task {task.config.task}": task_documents(task, limit, samples)}, where)
    except ValueError as exc:
        _stop_every_rank(f"error: {failure_message(exc)}")
    except SystemExit:
        _stop_every_rank(None)


@contextlib.contextmanager
def _refuse_short_tasks() -> Iterator[None]:
    """While inside, with more than one process, lm-eval's ``Task.build_all_requests`` first checks
    that the task has a document for every process (:func:`_check_task_fits`).

    Every rank builds the same tasks in the same order from the same files, ``--limit`` and
    ``--samples``, so every rank stops at the same task, before the collectives that follow.
    """
    from lm_eval.api.task import Task  # noqa: PLC0415

    from tabom.eval.sharding import launched_world  # noqa: PLC0415

    original = Task.build_all_requests
    if launched_world() <= 1:
        yield
        return

    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        _check_task_fits(self, kwargs.get("limit"), kwargs.get("samples"))
        return original(self, *args, **kwargs)

    Task.build_all_requests = checked  # type: ignore[method-assign]
    try:
        yield
    finally:
        Task.build_all_requests = original  # type: ignore[method-assign]


def run_lm_eval(args: list[str]) -> None:
    """Register the ``tabom`` model and run lm-eval's command line on ``args``."""
    import tabom.eval.lm_eval_model  # noqa: F401, PLC0415  (registers "tabom")
    from lm_eval.__main__ import cli_evaluate  # noqa: PLC0415

    saved = sys.argv
    sys.argv = ["lm-eval", *args]
    try:
        with _narrow_task_index(_narrow_paths(args) if "ls" not in args[:1] else None), _refuse_short_tasks():
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
