"""The release's evaluation protocol: lm-eval's tasks as the authors ran them, rebuilt offline.

The TABOM release scores its checkpoints with lm-evaluation-harness (``release_eval/eval_tabom.sh``
and ``eval_tabom_llada.sh``): ``gsm8k_cot``, ``minerva_math500``, ``humaneval_instruct``,
``mbpp_instruct`` and ``ifeval``, all with ``--num_fewshot 0`` and ``--apply_chat_template``. This
module reproduces what those tasks show the model and how they score it, reading the benchmarks'
own local files (nothing is downloaded, lm-eval's ``code_eval`` metric is not needed)::

    p = gsm8k_prompt("Tom has 3 apples ...")       # EvalPrompt 'Q: Tom has 3 apples ...\\nA:'
    ok, pred, extra = gsm8k_score("... The answer is 7.", "7")     # (True, '7', {'strict': '7'})

| task | user message | text after the chat template (``gen_prefix``) | stops | correct when |
|---|---|---|---|---|
| ``gsm8k_cot`` | ``Q: {question}\\nA:`` | - | ``Q:``, ``</s>``, ``<|im_end|>`` | flexible-extract: last number == gold (strict-match "The answer is n." in extra) |
| ``minerva_math500`` | ``Problem:\\n{problem}\\n\\nSolution:`` | - | ``Problem:`` | ``math_verify`` of the output against the record's ``solution`` (Minerva exact match in extra) |
| ``humaneval_instruct`` | "Write a solution ... passes the tests:" + fenced prompt | "Here is the completed function:" + fenced prompt | ``\\nclass``, ``\\ndef``, ``\\n#``, ``\\nif``, ``\\nprint`` | prompt + output up to the first fence passes ``check`` |
| ``mbpp_instruct`` | "You are an expert Python programmer ..." + text + the first 3 tests | a newline and an opening python fence | - | the first fenced block passes every assert |
| ``ifeval`` | the prompt | - | - | every instruction followed (strict; loose in extra) |

A prompt that continues after the chat template is an :class:`EvalPrompt` (a ``str`` carrying
``gen_prefix``); :func:`tabom.eval.protocol.encode_eval_prompt` appends the prefix's tokens after
the templated user turn, as lm-eval does with ``gen_prefix``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tabom.tasks.answers import normalize_number

PROTOCOLS = ("tabom", "release")
"""``tabom``: tabom's own zero-shot prompts; ``release``: the release's lm-eval tasks."""


class EvalPrompt(str):
    """A user message plus ``gen_prefix``: text the model's response starts with, after the template."""

    gen_prefix: str

    def __new__(cls, text: str, gen_prefix: str = "") -> "EvalPrompt":
        """A prompt ``text`` whose response is preceded by ``gen_prefix``."""
        obj = super().__new__(cls, text)
        obj.gen_prefix = gen_prefix
        return obj

    def __reduce__(self) -> tuple:
        """Copies and pickles keep the prefix."""
        return (EvalPrompt, (str(self), self.gen_prefix))


@dataclass(frozen=True)
class ReleaseTask:
    """One lm-eval task of the release: its name, few-shot count and stop strings."""

    benchmark: str
    lm_eval_task: str
    num_fewshot: int
    until: tuple[str, ...]
    scoring: str

    @property
    def method(self) -> str:
        """How a number of this task was scored, as results record it."""
        return f"release protocol, lm-eval {self.lm_eval_task} ({self.num_fewshot}-shot): {self.scoring}"


RELEASE_TASKS: dict[str, ReleaseTask] = {
    "gsm8k": ReleaseTask("gsm8k", "gsm8k_cot", 0, ("Q:", "</s>", "<|im_end|>"),
                         "flexible-extract (last number) == gold; strict-match in extra"),
    "math500": ReleaseTask("math500", "minerva_math500", 0, ("Problem:",),
                           "math_verify of the output against the solution; Minerva exact-match answer in extra"),
    "humaneval": ReleaseTask("humaneval", "humaneval_instruct", 0,
                             ("\nclass", "\ndef", "\n#", "\nif", "\nprint"),
                             "pass@1: prompt + completion up to the first fence passes check(entry_point)"),
    "mbpp": ReleaseTask("mbpp", "mbpp_instruct", 0, (), "pass@1: the first closed code block passes the asserts"),
    "ifeval": ReleaseTask("ifeval", "ifeval", 0, (), "prompt-level strict; loose in extra"),
}


def check_protocol(protocol: str) -> str:
    """``protocol`` when it is known, else a ValueError naming the choices."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: unknown {protocol!r} (known: {', '.join(PROTOCOLS)})")
    return protocol


def cut_at_stops(text: str, until: tuple[str, ...] | list[str]) -> str:
    """``text`` up to the earliest occurrence of any stop string (lm-eval's ``until``)."""
    cut = len(text)
    for stop in until:
        if stop:
            at = text.find(stop)
            if 0 <= at < cut:
                cut = at
    return text[:cut]


# ---------------------------------------------------------------------------------- GSM8K
_STRICT = re.compile(r"The answer is (\-?[0-9\.\,]+).")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def gsm8k_prompt(question: str) -> EvalPrompt:
    """``gsm8k_cot``'s zero-shot text: ``Q: {question}\\nA:``."""
    return EvalPrompt(f"Q: {question}\nA:")


def _gsm8k_normal(text: str) -> str:
    """lm-eval's exact_match preparation for gsm8k_cot: commas, ``$``, a ``#### `` head, a final dot off."""
    s = re.sub(r"(?s).*#### ", "", text)
    s = s.replace(",", "").replace("$", "")
    s = re.sub(r"\.$", "", s)
    return s.strip().lower()


def gsm8k_flexible(text: str) -> str | None:
    """The last match of the flexible-extract pattern (a number, possibly with ``$``, ``,`` and ``.``)."""
    matches = _FLEXIBLE.findall(text)
    if not matches:
        return None
    last = matches[-1]
    return last[0] or last[1]


def gsm8k_score(output: str, gold: str) -> tuple[bool, str | None, dict[str, object]]:
    """(flexible-extract correct, extracted, {"strict": strict-match extraction, "strict_correct": bool})."""
    text = cut_at_stops(output, RELEASE_TASKS["gsm8k"].until)
    flexible = gsm8k_flexible(text)
    strict_m = _STRICT.search(text)
    strict = strict_m.group(1) if strict_m else None
    want = _gsm8k_normal(gold)

    def same(pred: str | None) -> bool:
        if pred is None:
            return False
        got = _gsm8k_normal(pred)
        if got == want:
            return True
        a, b = normalize_number(got), normalize_number(want)
        return a is not None and a == b

    return same(flexible), flexible, {"strict": strict, "strict_correct": same(strict)}


# ---------------------------------------------------------------------------------- MATH500
def math_prompt(problem: str) -> EvalPrompt:
    """``minerva_math500``'s zero-shot text: ``Problem:\\n{problem}\\n\\nSolution:``."""
    return EvalPrompt(f"Problem:\n{problem}\n\nSolution:")


_MINERVA = re.compile(r"Final Answer: The final answer is(.*?). I hope it is correct.")


def math_score(output: str, solution: str) -> tuple[bool, str | None, dict[str, object]]:
    """``math_verify`` of the whole output against the gold solution (as minerva_math's math_verify metric).

    The Minerva "Final Answer: The final answer is X. I hope it is correct." extraction (the task's
    exact_match, which a zero-shot model rarely writes) is kept in extra as ``minerva_answer``.
    """
    from math_verify import parse, verify  # noqa: PLC0415

    text = cut_at_stops(output, RELEASE_TASKS["math500"].until)
    found = _MINERVA.search(text + "I hope it is correct.")
    try:
        target = parse(text)
        ok = bool(verify(gold=parse(solution), target=target))
        extracted = str(target[-1]) if target else None
    except Exception:  # noqa: BLE001  (a parser failure is a wrong answer, not a crash)
        ok, extracted = False, None
    return ok, extracted, {"minerva_answer": found.group(1).strip() if found else None}


# ---------------------------------------------------------------------------------- HumanEval
def humaneval_prompt(code_prompt: str) -> EvalPrompt:
    """``humaneval_instruct``'s message; the response continues the function after the prefix."""
    text = ("Write a solution to the following problem and make sure that it passes the tests:\n"
            f"```python\n{code_prompt}\n```\n")
    return EvalPrompt(text, f"Here is the completed function:\n```python\n{code_prompt}\n")


def humaneval_program(code_prompt: str, output: str, test: str, entry_point: str) -> str:
    """The program run: prompt + the output up to its first fence (after the stops), tests, check."""
    text = cut_at_stops(output, RELEASE_TASKS["humaneval"].until)
    fence = text.find("```")
    body = text if fence < 0 else text[:fence]
    return f"{code_prompt}{body}\n{test}\ncheck({entry_point})\n"


# ---------------------------------------------------------------------------------- MBPP
def mbpp_prompt(text: str, tests: list[str]) -> EvalPrompt:
    """``mbpp_instruct``'s message (the first three tests shown); the response opens a python fence."""
    shown = "\n".join((list(tests) + ["", "", ""])[:3])
    return EvalPrompt(f"You are an expert Python programmer, and here is your task:\n{text}\n"
                      f"Your code should pass these tests:\n{shown}", "\n```python\n")


_OPENED = re.compile(r"\s*```[\w+-]*[ \t]*\n?(.*?)```", flags=re.DOTALL)


def mbpp_code(output: str) -> str:
    """The code block the prefix opened: the output up to its first fence ('' when none closes it).

    A response that opens a second fence of its own gives that block's content. lm-eval 0.4.13
    prepends a fence and matches an optional language word, which also swallows a leading ``def``
    (docs/deviations.md); here the block is the text before the closing fence, as the task intends.
    """
    opened = _OPENED.match(output)
    if opened:
        return opened.group(1).rstrip("\n")
    fence = output.find("```")
    return "" if fence < 0 else output[:fence].rstrip("\n")
