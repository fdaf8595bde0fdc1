"""``ood_string``: transform or measure a short string of letters.

    prompt     Reverse the string: planet
    native     t e n a l p\\n#### tenalp
    reference  The string is planet. Read backwards it becomes tenalp. The answer is tenalp.

Operations: reverse, sort letters, count a letter, capitals, drop vowels,
first/last k letters, length, replace a letter, remove repeated letters.
Strings are random lowercase letters (length set by ``length_range``), so the
space of problems is large. The native solution writes the working as spaced
letters, then ``#### answer``.
"""

from __future__ import annotations

import random
import string

from tabom.tasks.answers import extract_answer_number, extract_answer_text, numbers_equal
from tabom.tasks.base import Draft, Problem, TaskFamily, check_range

OPS: tuple[str, ...] = ("reverse", "sort", "count", "upper", "novowels", "first", "last", "length", "replace", "dedupe")
NUMERIC_OPS: frozenset[str] = frozenset({"count", "length"})
VOWELS = "aeiou"


def spaced(text: str) -> str:
    """``"abc"`` -> ``"a b c"``; the empty string becomes ``"none"``."""
    return " ".join(text) if text else "none"


def dedupe(text: str) -> str:
    """Keep the first occurrence of each letter: ``"banana"`` -> ``"ban"``."""
    seen: set[str] = set()
    out = []
    for ch in text:
        if ch not in seen:
            seen.add(ch)
            out.append(ch)
    return "".join(out)


class OodString(TaskFamily):
    """String transformations on random letter strings; knobs set lengths and operations."""

    name = "ood_string"
    domain = "ood"

    def __init__(self, ops: tuple[str, ...] = OPS, length_range: tuple[int, int] = (4, 8)) -> None:
        bad = [o for o in ops if o not in OPS]
        if not ops or bad:
            raise ValueError(f"{self.name}: ops: expected a non-empty subset of {OPS}, got {ops!r}")
        check_range(self.name, "length_range", *length_range, minimum=2)
        if length_range[1] > 14:
            raise ValueError(f"{self.name}: length_range: at most 14 letters fit the native solution, got {length_range}")
        self.ops, self.length_range = tuple(ops), length_range

    def _string(self, rng: random.Random, must_have: str | None = None) -> str:
        chars = [rng.choice(string.ascii_lowercase) for _ in range(rng.randint(*self.length_range))]
        if must_have is not None:
            for _ in range(rng.randint(0, 3)):
                chars[rng.randrange(len(chars))] = must_have
        return "".join(chars)

    def draft(self, rng: random.Random) -> Draft:
        """A random operation on a random string (drawn again when the answer is empty)."""
        op = rng.choice(self.ops)
        letter = rng.choice(string.ascii_lowercase)
        s = self._string(rng, must_have=letter if op in ("count", "replace", "dedupe") else None)
        k = rng.randint(2, max(2, len(s) - 1))
        other = rng.choice([c for c in string.ascii_lowercase if c != letter])
        if op == "reverse":
            prompt, answer = f"Reverse the string: {s}", s[::-1]
            work, say = spaced(answer), f"Read backwards it becomes {answer}."
        elif op == "sort":
            answer = "".join(sorted(s))
            prompt, work = f"Sort the letters of {s} alphabetically", spaced(answer)
            say = f"In alphabetical order the letters are {spaced(answer)}."
        elif op == "count":
            hits = [c for c in s if c == letter]
            answer = str(len(hits))
            prompt, work = f"How many times does {letter} appear in {s}?", spaced("".join(hits))
            say = f"The letter {letter} appears {answer} times."
        elif op == "upper":
            answer = s.upper()
            prompt, work = f"Write {s} in capital letters", spaced(answer)
            say = f"In capital letters it is {answer}."
        elif op == "novowels":
            answer = "".join(c for c in s if c not in VOWELS)
            prompt, work = f"Remove the vowels from {s}", spaced(answer)
            say = f"Without a, e, i, o and u it becomes {answer}."
        elif op in ("first", "last"):
            answer = s[:k] if op == "first" else s[-k:]
            prompt, work = f"Write the {op} {k} letters of {s}", spaced(answer)
            say = f"The {op} {k} letters are {answer}."
        elif op == "length":
            answer = str(len(s))
            prompt = f"How many letters are in {s}?"
            work = " ".join(f"{c}{i + 1}" for i, c in enumerate(s))
            say = f"Counting them one by one gives {answer}."
        elif op == "replace":
            answer = s.replace(letter, other)
            prompt, work = f"Replace every {letter} in {s} with {other}", spaced(answer)
            say = f"Swapping each {letter} for {other} gives {answer}."
        else:  # dedupe
            answer = dedupe(s)
            prompt, work = f"Remove repeated letters from {s}, keeping the first of each", spaced(answer)
            say = f"Keeping only first occurrences leaves {answer}."
        if answer == "":  # an empty answer cannot be read back from "####"; draw again
            return self.draft(rng)
        native = f"{work}\n#### {answer}"
        reference = f"The string is {s}. {say} The answer is {answer}."
        return Draft(key=f"{op}|{prompt}", prompt=prompt, reference=reference, native=native, answer=answer,
                     meta={"op": op})

    def verify(self, problem: Problem, output: str) -> bool:
        """Numbers compare as numbers; strings must match exactly (case included)."""
        if problem.meta["op"] in NUMERIC_OPS:
            return numbers_equal(extract_answer_number(output), problem.answer)
        return extract_answer_text(output) == problem.answer
