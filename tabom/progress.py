"""Rich progress bars shared by every long loop (pretraining, generation, training, evaluation).

    with progress_bar() as bar:
        task = bar.add_task("decode", total=n)
        bar.update(task, advance=1, description="decode acc 0.42")

`enabled=False` (or a non-interactive run with TABOM_NO_PROGRESS=1) returns a silent stand-in
with the same methods, so loops never branch on whether a bar is shown.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator


class _Silent:
    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def advance(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextmanager
def progress_bar(enabled: bool = True, transient: bool = False) -> Iterator[Any]:
    """A rich Progress with description, bar, counts, elapsed and remaining time."""
    if not enabled or os.environ.get("TABOM_NO_PROGRESS"):
        yield _Silent()
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=transient) as bar:
        yield bar
