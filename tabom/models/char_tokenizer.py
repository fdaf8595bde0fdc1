"""The built-in tiny model's character tokenizer.

One id per printable ASCII character and newline, after five special tokens:

    [PAD]=0  [MASK]=1  [EOS]=2  [BOS]=3  [SEP]=4

A prompt is encoded as `[BOS] chars [SEP]`; the response follows and ends with `[EOS]` (the
response window is padded with further `[EOS]`, as LLaDA's SFT data are). Characters outside the
alphabet map to `?` — the tiny model only ever sees the built-in tasks, which use this alphabet.
Saved as a small JSON file (`tokenizer.json` with `"type": "tabom-char"`).
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ["[PAD]", "[MASK]", "[EOS]", "[BOS]", "[SEP]"]
ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
TOKENIZER_TYPE = "tabom-char"


class CharTokenizer:
    """Character-level tokenizer with a [MASK] token; `encode`/`decode` like a transformers one."""

    chat_template = None

    def __init__(self, alphabet: str = ALPHABET) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("tokenizer alphabet has repeated characters")
        self.alphabet = alphabet
        self._to_id = {ch: i + len(SPECIALS) for i, ch in enumerate(alphabet)}
        self.pad_token_id, self.mask_token_id, self.eos_token_id, self.bos_token_id, self.sep_token_id = range(5)
        self._unknown = self._to_id["?"]

    @property
    def vocab_size(self) -> int:
        """The five special tokens plus one id per alphabet character."""
        return len(SPECIALS) + len(self.alphabet)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids; with special tokens, wrapped as a prompt: [BOS] ... [SEP]."""
        ids = [self._to_id.get(ch, self._unknown) for ch in text]
        if add_special_tokens:
            ids = [self.bos_token_id, *ids, self.sep_token_id]
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Ids -> text; special tokens dropped (or shown by name when not skipped)."""
        out = []
        n = len(SPECIALS)
        for i in ids:
            i = int(i)
            if i >= n:
                out.append(self.alphabet[i - n])
            elif not skip_special_tokens:
                out.append(SPECIALS[i])
        return "".join(out)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` (type, specials, alphabet) into ``directory``."""
        path = Path(directory) / "tokenizer.json"
        path.write_text(json.dumps({"type": TOKENIZER_TYPE, "specials": SPECIALS, "alphabet": self.alphabet}))

    @classmethod
    def from_file(cls, path: str | Path) -> "CharTokenizer":
        """Read a ``tokenizer.json`` written by :meth:`save_pretrained`; ValueError for any other file."""
        data = json.loads(Path(path).read_text())
        if data.get("type") != TOKENIZER_TYPE or data.get("specials") != SPECIALS:
            raise ValueError(f"{path}: type: not a tabom character tokenizer")
        return cls(data["alphabet"])


def is_char_tokenizer_file(path: str | Path) -> bool:
    """True when `path` is a tokenizer.json written by CharTokenizer."""
    try:
        return json.loads(Path(path).read_text()).get("type") == TOKENIZER_TYPE
    except (OSError, ValueError, AttributeError):
        return False
