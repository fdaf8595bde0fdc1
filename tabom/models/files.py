"""Reading a model folder's small files: JSON configs and the tokenizer.

    config = read_json(folder / "config.json")     # ValueError naming FILE:LINE when it is bad
    tokenizer = load_tokenizer(folder)             # the character tokenizer, or AutoTokenizer (local only)

The family loaders (`dream.py`, `llada.py`), the weight reader (`weights.py`), adapters and
export all read these; `loading.py` dispatches to the family loaders. Keeping them here, below
every one of those modules, is what keeps `tabom.models` free of import circles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabom.models.char_tokenizer import CharTokenizer, is_char_tokenizer_file


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON file; invalid JSON (or text that is not UTF-8, or nesting too deep to parse)
    raises ValueError naming ``path:line``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ValueError(f"{path}: invalid JSON: nested too deeply to parse") from None


def load_tokenizer(directory: Path) -> Any:
    """The character tokenizer when the folder has one, else transformers' AutoTokenizer (local only)."""
    tok_file = directory / "tokenizer.json"
    if is_char_tokenizer_file(tok_file):
        return CharTokenizer.from_file(tok_file)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False, local_files_only=True)
