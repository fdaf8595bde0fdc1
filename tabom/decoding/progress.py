"""A rich progress bar over decoding steps and chunks, or nothing at all.

    >>> with StepProgress(enabled=True, num_chunks=3, steps_per_chunk=64) as bar:
    ...     bar.advance()        # after every forward
    ...     bar.finish_chunk()   # after every chunk (jumps over steps saved by early stopping)

``rich`` is imported only when the bar is enabled.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class StepProgress:
    """Context manager counting ``num_chunks * steps_per_chunk`` planned steps."""

    def __init__(self, enabled: bool, num_chunks: int, steps_per_chunk: int) -> None:
        self.enabled = enabled
        self.num_chunks = num_chunks
        self.steps_per_chunk = steps_per_chunk
        self.chunks_done = 0
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> StepProgress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]decoding[/] chunk {task.fields[chunk]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "decoding", total=self.num_chunks * self.steps_per_chunk, chunk=self._chunk_label()
            )
        return self

    def _chunk_label(self) -> str:
        return f"{min(self.chunks_done + 1, self.num_chunks)}/{self.num_chunks}"

    def advance(self) -> None:
        """One step (forward) done."""
        if self._progress is not None:
            self._progress.advance(self._task)

    def finish_chunk(self) -> None:
        """One chunk done: the bar moves to the chunk's planned end."""
        self.chunks_done += 1
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=self.chunks_done * self.steps_per_chunk,
                chunk=self._chunk_label(),
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
