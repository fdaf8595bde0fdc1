"""``ood_format``: follow an instruction whose output format can be checked.

    prompt     Write the word sun 3 times in capitals, separated by -
    native     SUN-SUN-SUN
    reference  Sure, here it is:\\nSUN - SUN - SUN

Seven instruction kinds: repeat a word, count, spell a word, wrap a word in
brackets, a one-key JSON object, words starting with a letter (open-ended:
the reference picks other words than the native solution), and reorder
words. The verifier reads the answer line (after ``####`` or "The answer is"
when present, else the last non-empty line) and checks the constraints:
items split on the separator with surrounding spaces ignored, JSON parsed.
"""

from __future__ import annotations

import json
import random
from typing import Any

from tabom.tasks.answers import extract_answer_text
from tabom.tasks.base import Draft, Problem, TaskFamily, check_range

WORDS: tuple[str, ...] = (
    "sun", "moon", "star", "tree", "leaf", "rock", "sand", "wave", "rain", "snow", "wind", "fire",
    "lake", "hill", "road", "door", "book", "lamp", "desk", "cup", "bowl", "fork", "ship", "boat",
    "bird", "fish", "frog", "duck", "bear", "wolf", "lion", "goat", "cat", "dog", "cow", "pig",
    "apple", "pear", "plum", "lime", "corn", "rice", "bread", "milk", "salt", "honey", "cake",
    "red", "blue", "green", "gold", "pink", "gray", "black", "white", "brown", "king", "queen",
    "cloud", "storm", "river", "stone", "glass", "paper", "chair", "table", "clock", "bell",
    "drum", "horn", "song", "dance", "game", "ball", "kite", "coin", "ring", "rope", "nest",
    "seed", "root", "farm", "town", "city", "park", "path", "gate", "wall", "roof", "bench",
    "bike", "train", "plane", "truck", "sock", "shoe", "coat", "hat", "bag", "box", "key",
    "pen", "ink", "map", "flag", "tent", "camp", "mint", "tea", "jam", "nut", "egg", "owl",
)
SEPARATORS: dict[str, str] = {"-": "-", "+": "+", "|": "|", "/": "/", ";": ";", ",": "commas", " ": "spaces", "*": "*"}
CASES: dict[str, str] = {"capitals": "upper", "lowercase": "lower", "title case": "title"}
BRACKETS: dict[str, tuple[str, str]] = {"round": ("(", ")"), "square": ("[", "]"), "curly": ("{", "}"), "angle": ("<", ">")}
JSON_KEYS: tuple[str, ...] = ("name", "color", "item", "city", "pet", "food", "size", "count", "age", "code")
KINDS: tuple[str, ...] = ("repeat", "count", "spell", "wrap", "json", "startwith", "order")
_BY_LETTER: dict[str, tuple[str, ...]] = {}
for _w in WORDS:
    _BY_LETTER[_w[0]] = _BY_LETTER.get(_w[0], ()) + (_w,)


def apply_case(word: str, case: str) -> str:
    """``upper`` / ``lower`` / ``title`` as named in ``CASES``."""
    return {"upper": word.upper(), "lower": word.lower(), "title": word.capitalize()}[CASES[case]]


def split_items(line: str, sep: str) -> list[str]:
    """Items of ``line`` separated by ``sep``, surrounding spaces dropped (``" "``: any whitespace)."""
    if sep == " ":
        return line.split()
    return [item.strip() for item in line.split(sep)]


def join_items(items: list[str], sep: str, spaced: bool) -> str:
    """Native style joins tightly; the reference style puts spaces around the separator."""
    if sep == " ":
        return " ".join(items)
    if not spaced:
        return sep.join(items)
    return (sep + " ").join(items) if sep in ",;" else f" {sep} ".join(items)


class OodFormat(TaskFamily):
    """Instruction following with checkable output formats; knobs set counts and kinds."""

    name = "ood_format"
    domain = "ood"

    def __init__(self, kinds: tuple[str, ...] = KINDS, count_range: tuple[int, int] = (2, 5)) -> None:
        bad = [k for k in kinds if k not in KINDS]
        if not kinds or bad:
            raise ValueError(f"{self.name}: kinds: expected a non-empty subset of {KINDS}, got {kinds!r}")
        check_range(self.name, "count_range", *count_range, minimum=1)
        self.kinds, self.count_range = tuple(kinds), count_range

    def draft(self, rng: random.Random) -> Draft:
        """A random kind of instruction, separator and count; key: the kind with its prompt or parameters."""
        kind = rng.choice(self.kinds)
        sep = rng.choice(tuple(SEPARATORS))
        sep_name = SEPARATORS[sep]
        k = rng.randint(*self.count_range)
        meta: dict[str, Any] = {"kind": kind, "sep": sep}
        ref_items: list[str] | None = None
        if kind == "repeat":
            word, case = rng.choice(WORDS), rng.choice(tuple(CASES))
            prompt = f"Write the word {word} {k} times in {case}, separated by {sep_name}"
            items = [apply_case(word, case)] * k
            meta.update(items=items)
        elif kind == "count":
            low, length = rng.randint(0, 30), k + 1
            items = [str(v) for v in range(low, low + length)]
            if rng.random() < 0.5:  # count down
                items = items[::-1]
            start, end = items[0], items[-1]
            prompt = f"Count from {start} to {end}, separated by {sep_name}"
            meta.update(items=items)
        elif kind == "spell":
            word, case = rng.choice(WORDS), rng.choice(("capitals", "lowercase"))
            prompt = f"Spell {word} in {case} with {sep_name} between the letters"
            items = list(apply_case(word, case))
            meta.update(items=items)
        elif kind == "startwith":
            k = min(k, 3)  # the vocabulary has at least 2k words for a dozen letters only up to k=3
            letter = rng.choice(sorted(c for c, ws in _BY_LETTER.items() if len(ws) >= 2 * k))
            prompt = f"Write {k} different words starting with {letter}, separated by {sep_name}"
            pool = list(_BY_LETTER[letter])
            rng.shuffle(pool)
            items, ref_items = sorted(pool[:k]), sorted(pool[k:2 * k])
            meta.update(letter=letter, n=k)
        elif kind == "order":
            words = rng.sample(WORDS, 3)
            how = rng.choice(("reverse order", "alphabetical order"))
            prompt = f"Write {', '.join(words)} in {how}, separated by {sep_name}"
            items = words[::-1] if how == "reverse order" else sorted(words)
            meta.update(items=items)
        elif kind == "wrap":
            word, shape = rng.choice(WORDS), rng.choice(tuple(BRACKETS))
            depth = min(k, 3)
            opener, closer = BRACKETS[shape]
            prompt = f"Wrap the word {word} in {depth} pairs of {shape} brackets"
            answer = opener * depth + word + closer * depth
            key = f"wrap|{word}|{depth}|{shape}"
            return Draft(key=key, prompt=prompt, reference=f"Sure, here it is:\n{answer}", native=answer,
                         answer=answer, meta={"kind": kind, "text": answer})
        else:  # json
            jkey = rng.choice(JSON_KEYS)
            value: Any = rng.randint(0, 99) if rng.random() < 0.4 else rng.choice(WORDS)
            shown = value if isinstance(value, int) else f'"{value}"'
            prompt = f"Write a JSON object with the key \"{jkey}\" and the value {shown}"
            native = json.dumps({jkey: value}, separators=(",", ":"))
            reference = "Here is the JSON object:\n" + json.dumps({jkey: value})
            return Draft(key=f"json|{jkey}|{shown}", prompt=prompt, reference=reference, native=native,
                         answer=native, meta={"kind": kind, "object": {jkey: value}})
        native = join_items(items, sep, spaced=False)
        reference = "Sure, here it is:\n" + join_items(ref_items or items, sep, spaced=True)
        key = f"{kind}|{prompt}"
        return Draft(key=key, prompt=prompt, reference=reference, native=native, answer=native, meta=meta)

    def verify(self, problem: Problem, output: str) -> bool:
        """Check the answer line against the instruction's constraints."""
        line = extract_answer_text(output)
        meta = problem.meta
        kind = meta["kind"]
        if kind == "wrap":
            return line == meta["text"]
        if kind == "json":
            try:
                return json.loads(line) == meta["object"]
            except ValueError:
                return False
        items = split_items(line, meta["sep"])
        if kind == "startwith":
            letter, n = meta["letter"], meta["n"]
            return (
                len(items) == n
                and len({w.lower() for w in items}) == n
                and all(len(w) >= 2 and w.isalpha() and w.isascii() and w[0].lower() == letter for w in items)
            )
        return items == meta["items"]
