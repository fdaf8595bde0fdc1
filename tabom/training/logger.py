"""Per-step training metrics: the console (rich), `metrics.jsonl`, TensorBoard, W&B.

    logger = MetricsLogger(run_dir, report_to=["tensorboard"], enabled=is_main)
    logger.log(step, {"loss": 0.91, "lr": 1e-4, "grad_norm": 0.3, "tokens_per_s": 5e3})
    logger.close()

`metrics.jsonl` gets one JSON object per logged step (`step`, `epoch` and every metric).
TensorBoard is used when `tensorboard` is in `report_to` and installed (the `tensorboard` extra,
otherwise a one-line note); `wandb` must be installed when asked for, and its project, entity and
run name come from the recipe (`wandb_project`, `wandb_entity`, `run_name`; the run name defaults
to the run folder's name). On resume, :func:`truncate_metrics` drops the
lines a killed run wrote after the checkpoint being resumed, so the file has one line per step;
it writes the kept lines to a temporary file, fsyncs it and renames it over the old one, so a kill
at any moment leaves the old file or the new one, never a half-written one.
Only the main process logs (`enabled=False` elsewhere).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tabom.outputs import write_text_atomic

METRICS_FILE = "metrics.jsonl"


def truncate_metrics(run_dir: Path, last_step: int) -> int:
    """Keep only lines of `metrics.jsonl` whose step is <= `last_step`; returns lines dropped."""
    return truncate_step_log(run_dir / METRICS_FILE, last_step)


def truncate_step_log(path: Path, last_step: int) -> int:
    """Keep only lines of a JSONL step log whose `step` is <= `last_step` (torn or unreadable
    lines are dropped too); returns lines dropped. A missing file is left missing."""
    if not path.exists():
        return 0
    kept, dropped = [], 0
    text = path.read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        try:
            step = int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError, OverflowError):
            dropped += 1
            continue
        if step <= last_step:
            kept.append(line)
        else:
            dropped += 1
    if dropped or not text.endswith("\n") and text:  # (a whole last line without its newline too)
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))  # temp + fsync + rename
    return dropped


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of `metrics.jsonl` in order (what tests and plots read)."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _fmt(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    return f"{value:.3e}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4f}"


class MetricsLogger:
    """Writes each step's metrics to every sink the run asked for."""

    def __init__(self, run_dir: Path, report_to: list[str], enabled: bool = True,
                 console: bool = True, config: dict[str, Any] | None = None,
                 wandb_project: str = "tabom", wandb_entity: str | None = None,
                 run_name: str | None = None) -> None:
        self.enabled = enabled
        self.console = None
        self.tb = None
        self.wandb = None
        self.file = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(run_dir / METRICS_FILE, "a", encoding="utf-8")
        if console:
            from rich.console import Console

            self.console = Console(stderr=True)
        if "tensorboard" in report_to:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                self.note("tensorboard is not installed: metrics go to metrics.jsonl only")
        if "wandb" in report_to:
            try:
                import wandb
            except ImportError:
                raise ImportError("report_to: wandb is not installed (pip install wandb)") from None
            self.wandb = wandb.init(project=wandb_project, entity=wandb_entity, name=run_name or run_dir.name,
                                    dir=str(run_dir), config=config)

    def note(self, text: str) -> None:
        """A line of text on the console (main process only)."""
        if self.enabled and self.console is not None:
            self.console.print(f"[dim]{text}[/dim]")

    def log(self, step: int, metrics: dict[str, float], epoch: int | None = None) -> None:
        """Record one optimizer step's metrics (floats) in every sink."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"step": step}
        if epoch is not None:
            record["epoch"] = epoch
        record.update({k: float(v) for k, v in metrics.items()})
        assert self.file is not None
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.console is not None:
            parts = " ".join(f"{k} [cyan]{_fmt(float(v))}[/cyan]" for k, v in metrics.items())
            head = f"[bold]step {step}[/bold]" + (f" ep {epoch}" if epoch is not None else "")
            self.console.print(f"{head}  {parts}", highlight=False, soft_wrap=True)
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(f"train/{key}", float(value), step)
        if self.wandb is not None:
            self.wandb.log({f"train/{k}": float(v) for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        """Close the metrics file and finish the TensorBoard and wandb sinks that are open."""
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
