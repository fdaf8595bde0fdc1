"""The release protocol: lm-eval's prompts rebuilt offline, its extraction, scoring end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

import lm_eval
from tabom.eval.evaluate import evaluate
from tabom.eval.presets import PRESETS, apply_preset, preset_protocol
from tabom.eval.protocol import encode_eval_prompt, protocol_for
from tabom.eval.sources import resolve_tasks
from tabom.tasks import release_protocol as rp
from test_benchmarks import DATA, HUMANEVAL, MBPP, NoModel, fixed, write_jsonl

TASKS = Path(lm_eval.__file__).parent / "tasks"


class _Loader(yaml.SafeLoader):
    """Reads lm-eval's task YAML, leaving its ``!function`` tags as plain strings."""


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _task(relative: str) -> dict[str, Any]:
    """An lm-eval task config with its ``include`` merged in (the installed harness's own files)."""
    path = TASKS / relative
    config = yaml.load(path.read_text(), Loader=_Loader)
    if "include" in config:
        base = _task(str(Path(relative).parent / config.pop("include")))
        config = base | config
    return config


def _render(template: str, doc: dict[str, Any]) -> str:
    return jinja2.Template(template, keep_trailing_newline=True).render(**doc)


def test_prompts_match_the_installed_lm_eval_tasks() -> None:
    """gsm8k_cot, humaneval_instruct and mbpp_instruct texts, prefixes and stops as lm-eval renders them."""
    gsm = _task("gsm8k/gsm8k-cot.yaml")
    doc = {"question": "Tom has 3 apples. How many?"}
    assert rp.gsm8k_prompt(doc["question"]) == _render(gsm["doc_to_text"], doc)
    assert list(rp.RELEASE_TASKS["gsm8k"].until) == gsm["generation_kwargs"]["until"]

    he = _task("humaneval/humaneval_instruct.yaml")
    doc = {"prompt": HUMANEVAL[0]["prompt"]}
    p = rp.humaneval_prompt(doc["prompt"])
    assert p == _render(he["doc_to_text"], doc) and p.gen_prefix == _render(he["gen_prefix"], doc)
    assert list(rp.RELEASE_TASKS["humaneval"].until) == he["generation_kwargs"]["until"]

    mb = _task("mbpp/mbpp_instruct.yaml")
    for tests in (MBPP[0]["test_list"], ["assert a", "assert b", "assert c", "assert d"]):
        doc = {"text": MBPP[0]["text"], "test_list": tests}
        p = rp.mbpp_prompt(doc["text"], tests)
        assert p == _render(mb["doc_to_text"], doc) and p.gen_prefix == _render(mb["gen_prefix"], doc)
    assert rp.math_prompt("1+1?") == "Problem:\n1+1?\n\nSolution:"


def test_gsm8k_strict_and_flexible() -> None:
    ok, pred, extra = rp.gsm8k_score("3 + 4 = 7. The answer is 7.\n\nQ: next question 99", "7")
    assert ok and pred == "7." and extra == {"strict": "7", "strict_correct": True}  # cut at 'Q:'
    ok, pred, extra = rp.gsm8k_score("It costs $1,200 in total.", "1200")
    assert ok and pred == "$1,200" and extra["strict"] is None and not extra["strict_correct"]
    assert not rp.gsm8k_score("12 then 9", "12")[0]
    assert not rp.gsm8k_score("no number", "3")[0]


def test_math_verify_against_the_solution() -> None:
    solution = "We add. $\\frac12+\\frac14=\\boxed{\\frac{3}{4}}$."
    assert rp.math_score("So the answer is $\\boxed{0.75}$.", solution)[0]
    ok, _, extra = rp.math_score("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", solution)
    assert ok and extra["minerva_answer"] == "$\\frac{3}{4}$"
    assert not rp.math_score("$\\boxed{\\frac{1}{4}}$", solution)[0]
    assert not rp.math_score("no answer at all", solution)[0]


def test_code_extraction() -> None:
    assert rp.mbpp_code("def f():\n    return 1\n```\nmore text") == "def f():\n    return 1"
    assert rp.mbpp_code("def f():  # never closed") == ""
    assert rp.mbpp_code("```python\ndef g():\n    return 2\n```\n") == "def g():\n    return 2"
    program = rp.humaneval_program("def add(a, b):\n", "    return a + b\n```\nexplained", "T", "add")
    assert program == "def add(a, b):\n    return a + b\n\nT\ncheck(add)\n"
    cut = rp.humaneval_program("def f():\n", "    return g()\ndef g():\n    return 1\n", "T", "f")
    assert "def g" not in cut  # '\ndef' is a stop of humaneval_instruct


RIGHT = {"gsm8k": ["3 + 4 = 7. The answer is 7.", "1200 - 200 = 1000. The answer is 1000."],
         "math500": ["$\\boxed{\\frac{3}{4}}$", "6 * 7 = $\\boxed{42}$"],
         "humaneval": ["    return a + b\n```", "    return -x\n```"],
         "mbpp": ["def square(x):\n    return x * x\n```", "def double(x):\n    return 2 * x\n```"],
         "ifeval": ["quiet pond\nfrogs jump in", "this answer has six words"]}
WRONG = {"gsm8k": ["The answer is 8.", "so 999"], "math500": ["$\\boxed{\\frac{1}{4}}$", "43"],
         "humaneval": ["    return a - b\n", "    return x\n"],
         "mbpp": ["def square(x):\n    return x", "def double(x):\n    return x\n```"],
         "ifeval": ["Quiet, pond", "too short"]}


@pytest.mark.parametrize("name", list(DATA))
def test_release_protocol_end_to_end(name: str, tmp_path: Path) -> None:
    """Right outputs score 100%, wrong 0%, the prompts are the release's, the method names the task."""
    spec = f"{name}={write_jsonl(tmp_path / f'{name}.jsonl', DATA[name])}"
    sources = resolve_tasks(spec, timeout_s=5.0, memory_mb=256, protocol="release")
    good = evaluate(NoModel(), sources, progress=False, decode_fn=fixed(RIGHT[name]), limit=None)
    bad = evaluate(NoModel(), sources, progress=False, decode_fn=fixed(WRONG[name]), limit=None)
    assert good.metrics()[name]["accuracy"] == 1.0, [s.extra for s in good.samples]
    assert bad.metrics()[name]["accuracy"] == 0.0
    assert rp.RELEASE_TASKS[name].lm_eval_task in good.methods[name]
    if name == "gsm8k":
        assert good.samples[0].prompt.startswith("Q: Tom has 3 apples")
    json.dumps(good.to_json())  # prompts carrying a prefix still write as JSON


def test_encode_eval_prompt_appends_the_prefix() -> None:
    from tabom.models import build_tiny

    tiny_model = build_tiny(seed=0)
    plain = rp.EvalPrompt("def f")
    with_prefix = rp.EvalPrompt("def f", "ab")
    base = encode_eval_prompt(tiny_model, plain)
    assert base == tiny_model.encode_prompt("def f")
    assert encode_eval_prompt(tiny_model, with_prefix) == base + tiny_model.tokenizer.encode("ab", add_special_tokens=False)


def test_release_presets_and_protocol_choice() -> None:
    """The release scripts' lengths (Dream MBPP 512, LLaDA GSM8K 256 block 8); a mismatched protocol is refused."""
    assert apply_preset(NoSettings(), "release-dream-mbpp").gen_length == 512
    llada = apply_preset(NoSettings(), "release-llada-gsm8k")
    assert (llada.gen_length, llada.steps, llada.block_length, llada.temperature) == (256, 256, 8, 0.0)
    assert PRESETS["release-dream-ifeval"]["gen_length"] == 512
    assert preset_protocol("release-dream-gsm8k") == "release" and preset_protocol("dream-gsm8k") == "tabom"
    assert protocol_for("release-dream-gsm8k", None) == "release" and protocol_for(None, None) == "tabom"
    with pytest.raises(ValueError, match="protocol: preset 'release-dream-gsm8k' belongs"):
        protocol_for("release-dream-gsm8k", "tabom")
    with pytest.raises(ValueError, match="protocol: unknown 'paper'"):
        protocol_for(None, "paper")


def NoSettings() -> Any:  # noqa: N802  (reads as the settings' constructor)
    from tabom.decoding.settings import DecodeSettings

    return DecodeSettings()
