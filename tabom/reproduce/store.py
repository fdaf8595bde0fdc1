"""Where every artifact of a reproduction lives, and how a finished step is recognised.

    store = Store(Path("runs/repro"))
    store.eval_json("math", "tabom", 0, "full", "test")   # runs/repro/eval/math/tabom/seed0/full_test.json
    if not store.done(path, params):
        ...                                                # make the artifact
        store.mark(path, params)

A step is done when its artifact exists *and* its completion marker records the same parameters
(the marker of a file ``x`` is ``x.done``; of a folder ``d`` it is ``d/.done``). Deleting an
artifact, or changing a knob that the step depends on, makes that step run again; everything
else is skipped. JSON files are written atomically (temporary file, then rename), so a kill never
leaves half a file behind a marker.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

MARKER = ".done"


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (``path.PID.tmp`` then rename: processes writing the
    same file at once each rename a whole file of their own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> Any:
    """Parse a JSON file; invalid JSON raises ValueError naming ``path:line``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: json: {exc.msg}") from None


def _normal(params: dict[str, Any]) -> Any:
    """Params as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(params, default=str))


@dataclass
class StepRecord:
    """One step of a reproduction: its name, whether it ran or came from the cache, seconds."""

    name: str
    status: str
    seconds: float = 0.0


@dataclass
class Store:
    """The reproduction folder: artifact paths, completion markers, and a log of the steps."""

    root: Path
    log: list[StepRecord] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ artifact paths
    def trajectories(self, domain: str) -> Path:
        """``trajectories/<domain>.jsonl``: the domain's self-distilled trajectories."""
        return self.root / "trajectories" / f"{domain}.jsonl"

    def gt_data(self, domain: str) -> Path:
        """``data/sft_gt_<domain>.jsonl``: the domain's ground-truth SFT data."""
        return self.root / "data" / f"sft_gt_{domain}.jsonl"

    def run_dir(self, domain: str, key: str, seed: int) -> Path:
        """``runs/<domain>/<key>/seed<seed>``: one training run's folder."""
        return self.root / "runs" / domain / key / f"seed{seed}"

    def eval_json(self, domain: str, key: str, seed: int | None, decode: str, split: str) -> Path:
        """``eval/<domain>/<key>/<seedN or base>/<decode>_<split>.json``: one evaluation's results."""
        return self.root / "eval" / domain / key / _seed_dir(seed) / f"{decode}_{split}.json"

    def tds_json(self, domain: str, key: str, seed: int | None) -> Path:
        """``tds/<domain>/<key>/<seedN or base>.json``: one TDS measurement."""
        return self.root / "tds" / domain / key / f"{_seed_dir(seed)}.json"

    def figure(self, name: str) -> Path:
        """``figures/<name>``: one of the report's figures."""
        return self.root / "figures" / name

    # ------------------------------------------------------------------ markers
    @staticmethod
    def marker(artifact: Path) -> Path:
        """The completion marker of an artifact: ``d/.done`` for a folder ``d``, ``x.done`` for a file."""
        return artifact / MARKER if artifact.is_dir() else artifact.with_name(artifact.name + MARKER)

    def done(self, artifact: Path, params: dict[str, Any]) -> bool:
        """True when the artifact exists and its marker holds exactly these params."""
        if not artifact.exists():
            return False
        marker = self.marker(artifact)
        if not marker.is_file():
            return False
        try:
            return read_json(marker).get("params") == _normal(params)
        except ValueError:
            return False

    def stale(self, artifact: Path, params: dict[str, Any]) -> bool:
        """True when a marker exists but records other params (the artifact must be rebuilt)."""
        marker = self.marker(artifact)
        if not artifact.exists() or not marker.is_file():
            return False
        try:
            return read_json(marker).get("params") != _normal(params)
        except ValueError:
            return True

    def mark(self, artifact: Path, params: dict[str, Any], seconds: float | None = None) -> None:
        """Write the completion marker: the params, when it finished and how long it took."""
        record: dict[str, Any] = {"params": params, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if seconds is not None:
            record["seconds"] = round(seconds, 2)
        write_json(self.marker(artifact), record)

    def compute_seconds(self) -> float:
        """Seconds of every finished step in the folder, whichever invocation ran it (from the markers)."""
        total = 0.0
        for marker in self.root.rglob("*" + MARKER):
            try:
                total += float(read_json(marker).get("seconds") or 0.0)
            except (ValueError, OSError, TypeError):
                continue
        return total

    def remove(self, artifact: Path) -> None:
        """Delete an artifact (file or folder) and its marker; refuses paths outside the root."""
        root = self.root.resolve()
        target = artifact.resolve()
        if root not in target.parents:
            raise ValueError(f"{artifact}: refusing to delete outside {self.root}")
        marker = self.marker(artifact)
        if artifact.is_dir():
            shutil.rmtree(artifact)
        elif artifact.exists():
            artifact.unlink()
        if marker.exists():
            marker.unlink()

    def step(self, name: str, artifact: Path, params: dict[str, Any], make: Callable[[], Any]) -> bool:
        """Run ``make`` unless the step is done; mark it; log it. Returns True when it ran."""
        if self.done(artifact, params):
            self.record(name, "cached")
            return False
        start = time.time()
        make()
        self.mark(artifact, params, time.time() - start)
        self.record(name, "ran", time.time() - start)
        return True

    def record(self, name: str, status: str, seconds: float = 0.0) -> None:
        """Log a step's status (``ran`` or ``cached``) and seconds; echo it when ``echo`` is set."""
        self.log.append(StepRecord(name, status, round(seconds, 2)))
        if self.echo is not None:
            extra = f" ({seconds:.1f}s)" if status == "ran" else ""
            self.echo(f"[{status}] {name}{extra}")

    def ran(self) -> list[str]:
        """Names of the steps that ran (not cached) in this process."""
        return [r.name for r in self.log if r.status == "ran"]


def _seed_dir(seed: int | None) -> str:
    return "base" if seed is None else f"seed{seed}"
