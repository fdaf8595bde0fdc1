"""The paper's benchmarks read from local files: GSM8K, MATH500, HumanEval, MBPP and IFEval.

Nothing is downloaded: each benchmark reads the public release's JSONL (or JSON list, or parquet)
from a path you give. ``tabom eval --tasks gsm8k=data/gsm8k/test.jsonl`` names them so::

    bench = load_benchmark("mbpp=data/mbpp/test.jsonl")
    items = bench.items(limit=50)                  # list[BenchItem]
    scores = bench.score(items, outputs)           # list[Scored], same order

| name | fields read | correct when |
|---|---|---|
| gsm8k | question, answer (``#### n``) | the last number of the output equals n (lm-eval's flexible extract) |
| math500 | problem, answer | the last ``\\boxed{}`` is equivalent (``math_verify``, else normalized strings) |
| humaneval | task_id, prompt, test, entry_point | prompt + completion passes ``check(entry_point)`` in the sandbox |
| mbpp | task_id, text (or prompt), test_list | the code passes every assert in the sandbox |
| ifeval | key, prompt, instruction_id_list, kwargs | every instruction is followed (strict; loose kept beside) |

Generated code runs in :func:`tabom.tasks.sandbox.run_many` (own PID/mount/network namespaces,
read-only system, no privileges, time and memory limits): a crash, hang or fork bomb is a failed
sample; where programs cannot be isolated it raises instead (docs/evaluation.md).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabom.tasks import release_protocol as rp
from tabom.tasks.answers import extract_final_number, numbers_equal, normalize_number


@dataclass(frozen=True)
class BenchItem:
    """One benchmark problem: the prompt shown to the model, the gold answer, what scoring needs."""

    id: str
    prompt: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Scored:
    """The verdict on one output; ``extra`` holds benchmark-specific details (e.g. IFEval loose)."""

    correct: bool
    extracted: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


def read_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line or row number, record)`` pairs of a .jsonl, .json (a list) or .parquet file, or of a
    folder written by `datasets`' ``save_to_disk`` (the ``test`` split of a DatasetDict) or of parquet files."""
    p = Path(path)
    if p.is_dir():  # a `datasets` save_to_disk folder (its test split by default) or a parquet folder
        from tabom.tasks.published import read_table  # noqa: PLC0415

        return [(i, _plain(dict(r))) for i, r in enumerate(read_table(p, default_split="test"), start=1)]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such benchmark file")
    if p.suffix == ".parquet":
        import pandas as pd  # noqa: PLC0415

        frame = pd.read_parquet(p)
        return [(i + 1, _plain(row)) for i, row in enumerate(frame.to_dict(orient="records"))]
    if p.suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{p}:1: expected a JSON list of records")
        return [(i + 1, r) for i, r in enumerate(data)]
    out: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}:{lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{p}:{lineno}: expected a JSON object")
        out.append((lineno, record))
    return out


def _plain(value: Any) -> Any:
    """numpy arrays and scalars from parquet -> lists and Python scalars (recursively)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _field(record: dict[str, Any], where: str, *names: str, kind: type = str) -> Any:
    """The first present field of ``names``, checked to be of ``kind``."""
    for name in names:
        if name in record and record[name] is not None:
            value = record[name]
            if kind is str and isinstance(value, int):
                value = str(value)
            if not isinstance(value, kind):
                raise ValueError(f"{where}: {name}: expected {kind.__name__}, got {type(value).__name__}")
            return value
    raise ValueError(f"{where}: {'/'.join(names)}: missing field")


def extract_code(output: str) -> str:
    """The code of a response: its first fenced block holding a ``def`` (else its first), else all."""
    blocks = re.findall(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|$)", output, flags=re.DOTALL)
    if not blocks:
        return output
    with_def = [b for b in blocks if "def " in b]
    return (with_def or blocks)[0]


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced; None if none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0 or text[start:i].strip() not in ("\\boxed", "\\fbox"):
        m = re.match(r"\\boxed ([^\s$]+)", text[start:])
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def normalize_latex(text: str) -> str:
    """A crude canonical form for string comparison of math answers."""
    s = text.strip().strip("$").rstrip(".")
    for old, new in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""),
                     ("dfrac", "frac"), ("tfrac", "frac"), ("^\\circ", ""), ("^{\\circ}", ""), ("\\%", "")):
        s = s.replace(old, new)
    s = re.sub(r"\\text\{\s*([^}]*)\}", r"\1", s)
    s = re.sub(r"\s+", "", s)
    number = normalize_number(s)
    return number if number is not None else s


def math_verify_available() -> bool:
    """True when the optional ``math_verify`` package can be imported."""
    try:
        import math_verify  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


class Benchmark(ABC):
    """A benchmark file. Subclasses set ``name`` and implement ``parse`` and ``score``."""

    name: str = ""
    method: str = ""
    """How correctness is decided, recorded in results."""
    runs_code: bool = False
    """Scored by running the outputs in the sandbox (then built only where it can isolate them)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 10.0, memory_mb: int = 1024, workers: int = 2,
                 protocol: str = "tabom") -> None:
        from tabom.tasks.release_protocol import check_protocol  # noqa: PLC0415

        self.path = Path(path)
        self.protocol = check_protocol(protocol)
        """``tabom``: tabom's zero-shot prompts; ``release``: the release's lm-eval tasks (release_protocol)."""
        if self.protocol == "release" and self.name in rp.RELEASE_TASKS:
            self.method = rp.RELEASE_TASKS[self.name].method
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.workers = workers
        if self.runs_code:  # no isolation for generated code: stop now, not after decoding
            from tabom.tasks.sandbox import require_isolation  # noqa: PLC0415

            require_isolation()

    def items(self, limit: int | None = None) -> list[BenchItem]:
        """The first ``limit`` problems of the file (all when None), in file order."""
        out = []
        for lineno, record in read_records(self.path):
            if limit is not None and len(out) >= limit:
                break
            out.append(self.parse(record, f"{self.path}:{lineno}", lineno))
        return out

    @abstractmethod
    def parse(self, record: dict[str, Any], where: str, lineno: int) -> BenchItem:
        """One record -> item; errors are prefixed with ``where`` (``file:line``)."""

    @abstractmethod
    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """Verdicts for ``outputs`` (one per item, same order)."""

    def _run_code(self, programs: list[str]) -> list[Scored]:
        from tabom.tasks.sandbox import run_many  # noqa: PLC0415

        results = run_many(programs, workers=self.workers, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        return [Scored(r.ok, None, {"timed_out": r.timed_out, "returncode": r.returncode,
                                    "stderr": r.stderr[-500:]}) for r in results]


class GSM8K(Benchmark):
    """GSM8K: grade-school word problems; the gold answer is the number after ``####``."""

    name = "gsm8k"
    method = "flexible-extract: last number of the output == number after '####'"

    def parse(self, record: dict[str, Any], where: str, lineno: int) -> BenchItem:
        """``question`` and ``answer`` -> item; the gold is the number after the last ``####``."""
        question = _field(record, where, "question")
        answer = _field(record, where, "answer")
        if "####" not in answer:
            raise ValueError(f"{where}: answer: no '#### n' final answer")
        gold = answer.rsplit("####", 1)[1].strip()
        if self.protocol == "release":
            return BenchItem(str(record.get("id", f"gsm8k-{lineno}")), rp.gsm8k_prompt(question), gold)
        prompt = f"{question}\nPlease reason step by step, and give the final number after '####'."
        return BenchItem(str(record.get("id", f"gsm8k-{lineno}")), prompt, gold)

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """GSM8K: the response's final number against the reference answer, as lm-eval's flexible-extract."""
        out = []
        for item, text in zip(items, outputs, strict=True):
            if self.protocol == "release":
                out.append(Scored(*rp.gsm8k_score(text, item.answer)))
                continue
            pred = extract_final_number(text)
            out.append(Scored(numbers_equal(pred, item.answer), pred))
        return out


class MATH500(Benchmark):
    """MATH500: competition problems scored on the last ``\\boxed{}`` of the output."""

    name = "math500"

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.use_math_verify = math_verify_available()
        self.method = ("boxed answer, math_verify equivalence" if self.use_math_verify
                       else "boxed answer, normalized string match (math_verify not installed)")
        if self.protocol == "release":
            if not self.use_math_verify:
                raise ValueError("math500: the release protocol scores with math_verify, which is not installed")
            self.method = rp.RELEASE_TASKS["math500"].method

    def parse(self, record: dict[str, Any], where: str, lineno: int) -> BenchItem:
        """``problem`` and ``answer`` -> item whose prompt asks for the answer in ``\\boxed{}``."""
        problem = _field(record, where, "problem")
        answer = _field(record, where, "answer")
        item_id = str(record.get("unique_id", f"math500-{lineno}"))
        if self.protocol == "release":
            solution = record.get("solution") or f"$\\boxed{{{answer}}}$"
            return BenchItem(item_id, rp.math_prompt(problem), answer, {"solution": str(solution)})
        prompt = f"{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
        return BenchItem(item_id, prompt, answer)

    def equivalent(self, pred: str, gold: str) -> bool:
        """Whether two answers agree (math_verify when importable, else normalized strings)."""
        if normalize_latex(pred) == normalize_latex(gold):
            return True
        if not self.use_math_verify:
            return False
        from math_verify import parse, verify  # noqa: PLC0415

        try:
            return bool(verify(parse(f"${gold}$"), parse(f"$\\boxed{{{pred}}}$")))
        except Exception:  # noqa: BLE001  (a parser failure is a wrong answer, not a crash)
            return False

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """MATH500: the last ``\\boxed{}`` of the response, :meth:`equivalent` to the answer (none: wrong)."""
        out = []
        for item, text in zip(items, outputs, strict=True):
            if self.protocol == "release":
                out.append(Scored(*rp.math_score(text, item.meta["solution"])))
                continue
            pred = extract_boxed(text)
            out.append(Scored(pred is not None and self.equivalent(pred, item.answer), pred))
        return out


class HumanEval(Benchmark):
    """HumanEval: complete a function; pass@1 by running the record's ``check`` in the sandbox."""

    name = "humaneval"
    runs_code = True
    method = "pass@1: prompt + completion passes check(entry_point) in the sandbox"

    def parse(self, record: dict[str, Any], where: str, lineno: int) -> BenchItem:
        """``task_id``, ``prompt``, ``test`` and ``entry_point`` -> item asking for the whole function."""
        task_id = _field(record, where, "task_id")
        code_prompt = _field(record, where, "prompt")
        meta = {"code_prompt": code_prompt, "test": _field(record, where, "test"),
                "entry_point": _field(record, where, "entry_point")}
        prompt: str = ("Complete the following Python function. Write the whole function in a "
                       f"```python``` code block.\n```python\n{code_prompt}```")
        if self.protocol == "release":
            prompt = rp.humaneval_prompt(code_prompt)
        return BenchItem(task_id, prompt, str(record.get("canonical_solution", "")), meta)

    @staticmethod
    def program(item: BenchItem, output: str) -> str:
        """The script run for one output: the prompt, the completion, the tests, ``check``."""
        code = extract_code(output)
        entry = item.meta["entry_point"]
        head = item.meta["code_prompt"]
        body = f"{head}\n{code}" if re.search(rf"def\s+{re.escape(entry)}\s*\(", code) else head + code
        return f"{body}\n\n{item.meta['test']}\n\ncheck({entry})\n"

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """HumanEval: each :meth:`program` run in the sandbox; correct when the run succeeds."""
        if self.protocol == "release":
            return self._run_code([rp.humaneval_program(i.meta["code_prompt"], o, i.meta["test"], i.meta["entry_point"])
                                   for i, o in zip(items, outputs, strict=True)])
        return self._run_code([self.program(i, o) for i, o in zip(items, outputs, strict=True)])


class MBPP(Benchmark):
    """MBPP: write code from a description; pass@1 by running ``test_list``'s asserts in the sandbox."""

    name = "mbpp"
    runs_code = True
    method = "pass@1: the code passes every assert of test_list in the sandbox"

    def parse(self, record: dict[str, Any], where: str, lineno: int) -> BenchItem:
        """``task_id``, ``text`` (or ``prompt``), ``test_list``, ``test_setup_code`` -> item listing tests."""
        task_id = _field(record, where, "task_id")
        text = _field(record, where, "text", "prompt")
        tests = _field(record, where, "test_list", kind=list)
        if not tests or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"{where}: test_list: expected a non-empty list of strings")
        setup = record.get("test_setup_code") or ""
        prompt: str = (f"{text}\nYour code should pass these tests:\n" + "\n".join(tests)
                       + "\nWrite the code in a ```python``` code block.")
        if self.protocol == "release":
            prompt = rp.mbpp_prompt(text, tests)
        return BenchItem(task_id, prompt, str(record.get("code", "")), {"tests": tests, "setup": setup})

    @staticmethod
    def program(item: BenchItem, output: str) -> str:
        """The script run for one output: the extracted code, the setup code, then the asserts."""
        return f"{extract_code(output)}\n\n{item.meta['setup']}\n" + "\n".join(item.meta["tests"]) + "\n"

    def release_program(self, item: BenchItem, output: str) -> str:
        """The release protocol's program: the closed code block, the setup code, then the asserts."""
        return f"{rp.mbpp_code(output)}\n\n{item.meta['setup']}\n" + "\n".join(item.meta["tests"]) + "\n"

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """MBPP: each :meth:`program` run in the sandbox; correct when the run succeeds."""
        program = self.release_program if self.protocol == "release" else self.program
        return self._run_code([program(i, o) for i, o in zip(items, outputs, strict=True)])


class IFEval(Benchmark):
    """IFEval: verifiable instructions; prompt-level strict accuracy, loose and per-instruction in extra."""

    name = "ifeval"
    method = "all instructions followed (prompt-level strict); loose in extra"

    def parse(self, record: dict[str, Any], where: str, lineno: int) -> BenchItem:
        """``key``, ``prompt``, ``instruction_id_list``, ``kwargs`` -> item; instruction ids checked."""
        from tabom.tasks.ifeval import CHECKERS  # noqa: PLC0415

        key = _field(record, where, "key")
        prompt = _field(record, where, "prompt")
        ids = _field(record, where, "instruction_id_list", kind=list)
        kwargs = _field(record, where, "kwargs", kind=list)
        if len(ids) != len(kwargs):
            raise ValueError(f"{where}: kwargs: {len(kwargs)} entries for {len(ids)} instructions")
        for i in ids:
            if i not in CHECKERS:
                raise ValueError(f"{where}: instruction_id_list: unknown instruction {i!r}")
        return BenchItem(key, prompt, "", {"instruction_id_list": ids, "kwargs": kwargs})

    def score(self, items: list[BenchItem], outputs: list[str]) -> list[Scored]:
        """IFEval: correct when every instruction is followed (strict); loose, per-instruction in extra."""
        from tabom.tasks.ifeval import score_ifeval  # noqa: PLC0415

        out = []
        for item, text in zip(items, outputs, strict=True):
            strict, loose = score_ifeval(item.meta["instruction_id_list"], item.meta["kwargs"], text)
            out.append(Scored(all(strict), None, {"loose": all(loose), "inst_strict": strict, "inst_loose": loose}))
        return out


BENCHMARKS: dict[str, type[Benchmark]] = {b.name: b for b in (GSM8K, MATH500, HumanEval, MBPP, IFEval)}


def is_benchmark_spec(spec: str) -> bool:
    """True for ``name=path`` task specs."""
    return "=" in spec


def load_benchmark(spec: str, **kwargs: Any) -> Benchmark:
    """``"gsm8k=/data/test.jsonl"`` -> a :class:`GSM8K` over that file (kwargs: sandbox limits)."""
    name, _, path = spec.partition("=")
    name = name.strip().lower()
    if name not in BENCHMARKS:
        raise ValueError(f"tasks: unknown benchmark {name!r} in {spec!r} (known: {', '.join(BENCHMARKS)})")
    if not path.strip():
        raise ValueError(f"tasks: {spec!r}: give the benchmark file after '='")
    return BENCHMARKS[name](path.strip(), **kwargs)
