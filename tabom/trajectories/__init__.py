"""Self-distilled trajectories: the JSONL schema, validation, reading and crash-safe writing.

Start with `schema.py` (the record and its checks), then `io.py` (read, append, resume, shards).
`prompts.py` reads user prompt files and checks answers; `inspect.py` summarises a file (it
imports rich, so it is not imported here); `builder.py` runs `tabom generate` (imports torch).
Nothing imported by this package file needs torch.
"""

from tabom.trajectories.io import (
    TornLine,
    TrajectoryWriter,
    existing_ids,
    merge_shards,
    read_trajectories,
    repair_torn_tail,
    shard_path,
)
from tabom.trajectories.prompts import PromptRecord, read_prompts, verify_answer
from tabom.trajectories.schema import METHODS, Trajectory, TrajectoryError

__all__ = [
    "METHODS",
    "PromptRecord",
    "TornLine",
    "Trajectory",
    "TrajectoryError",
    "TrajectoryWriter",
    "existing_ids",
    "merge_shards",
    "read_prompts",
    "read_trajectories",
    "repair_torn_tail",
    "shard_path",
    "verify_answer",
]
