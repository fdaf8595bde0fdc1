"""Summaries and line-by-line validation of a trajectory file (`tabom data inspect`).

    report = inspect_file("runs/t.jsonl")          # every line checked, errors collected
    rich.print(render_report(report))
    for e in report.errors: print(e)               # FILE:LINE: field: what is wrong

The report holds: line counts, methods and models, response lengths in characters and in tokens
up to the first EOS, the yield per data source (correct / rows with a known verdict, and the row
total), a histogram of how many tokens were unmasked per decode step (over steps
0..last step of each trajectory, so steps that unmasked nothing count as 0), and the share of
content (positions before the first EOS) among the tokens TABOM's CE window (M) and ranking window
(W) see, an exact expectation over the uniform cut (`tabom.trajectories.window_stats`); the
windows default to the paper's W = 32 scaled to the file's response length, round(32 * G / 256).

Lines are validated by `tabom.trajectories.schema.TrajectoryChecker`, the checker `tabom train`
reads its data through: pass `vocab_size` (the model's, `tabom data inspect --model NAME`) to
check token ids against the vocabulary the way training will.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tabom.trajectories.io import PathLike, iter_json_lines
from tabom.trajectories.release import inspection_trajectory, is_release_line, parse_release
from tabom.trajectories.schema import (
    Trajectory,
    TrajectoryChecker,
    TrajectoryError,
    response_token_count,
    utf8_error,
)


@dataclass
class LengthStats:
    """Count, min, mean and max of a list of lengths (zeros when empty)."""

    n: int = 0
    min: int = 0
    mean: float = 0.0
    max: int = 0

    @classmethod
    def of(cls, values: list[int]) -> LengthStats:
        """The stats of ``values`` (all zeros when empty)."""
        if not values:
            return cls()
        return cls(len(values), min(values), sum(values) / len(values), max(values))


@dataclass
class SourceYield:
    """Rows of one data source: total, with a known verdict, and verified correct."""

    total: int = 0
    known: int = 0
    correct: int = 0

    @property
    def rate(self) -> float | None:
        """correct / known, None when no verdict is known."""
        return self.correct / self.known if self.known else None


@dataclass
class InspectReport:
    """What `inspect_file` found in one trajectory file."""

    path: str
    n_lines: int = 0  # non-blank lines read
    n_valid: int = 0
    errors: list[TrajectoryError] = field(default_factory=list)
    stopped_early: bool = False  # strict mode stopped at the first error
    methods: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    response_chars: LengthStats = field(default_factory=LengthStats)
    response_tokens: LengthStats = field(default_factory=LengthStats)
    gen_lengths: Counter[int] = field(default_factory=Counter)
    yields: dict[str, SourceYield] = field(default_factory=dict)
    tokens_per_step: Counter[int] = field(default_factory=Counter)  # k -> number of steps
    never_decoded: int = 0  # positions with decoding_order == -1
    derived: Counter[str] = field(default_factory=Counter)  # release-layout lines: field -> lines it was derived for
    content: dict[str, Any] | None = None  # content_fraction_in_windows + the windows used (None: no token ids)

    @property
    def ok(self) -> bool:
        """True when every line read was valid."""
        return not self.errors

    @property
    def mean_tokens_per_step(self) -> float:
        """Mean tokens unmasked per decode step over the histogram (0.0 when it is empty)."""
        steps = sum(self.tokens_per_step.values())
        return sum(k * n for k, n in self.tokens_per_step.items()) / steps if steps else 0.0


def step_histogram(decoding_order: list[int]) -> Counter[int]:
    """Histogram {tokens unmasked at a step: number of such steps} over steps 0..max step.

    [0, 2, 1, 2, -1] -> steps 0,1,2 unmask 1,1,2 tokens -> {1: 2, 2: 1}.
    """
    decoded = [s for s in decoding_order if s >= 0]
    if not decoded:
        return Counter()
    per_step = Counter(decoded)
    histogram = Counter(per_step.values())
    empty = max(decoded) + 1 - len(per_step)  # steps up to the last that unmasked nothing
    if empty:
        histogram[0] = empty
    return histogram


def content_row(traj: Trajectory) -> tuple[list[int], list[int]]:
    """``(1 before the first EOS else 0 per position, decoding_order)``: a row for
    `content_fraction_in_windows` with padding id 0 (what follows the first EOS is padding)."""
    n = response_token_count(traj)
    return [1 if i < n else 0 for i in range(len(traj.response_token_ids))], list(traj.decoding_order)


def default_window(gen_length: int) -> int:
    """The paper's W = 32 over 256 tokens scaled to ``gen_length``: ``max(2, round(32 * G / 256))``."""
    return max(2, min(gen_length - 1, round(32 * gen_length / 256)))


def content_fraction(rows: list[tuple[list[int], list[int]]], gen_length: int, ce_window: int | None = None,
                     rank_window: int | None = None) -> dict[str, Any]:
    """`content_fraction_in_windows` of :func:`content_row` rows with the given (or default) windows,
    plus ``ce_window``, ``rank_window`` and ``gen_length``."""
    from tabom.trajectories.window_stats import content_fraction_in_windows

    ce = ce_window or default_window(gen_length)
    rank = rank_window or ce
    return content_fraction_in_windows(rows, ce_window=ce, rank_window=rank, padding_ids={0}) | {
        "ce_window": ce, "rank_window": rank, "gen_length": gen_length}


def file_content_fraction(path: PathLike, ce_window: int | None = None,
                          rank_window: int | None = None) -> dict[str, Any] | None:
    """:func:`content_fraction` of every valid line of a trajectory file (None when none has token ids)."""
    report = inspect_file(path, ce_window=ce_window, rank_window=rank_window)
    return report.content


def _add(report: InspectReport, traj: Trajectory, chars: list[int], tokens: list[int]) -> None:
    report.n_valid += 1
    report.methods[traj.method] += 1
    report.models[traj.model] += 1
    chars.append(len(traj.response))
    if traj.response_token_ids:  # a release line may have none: tokenized at training time
        report.gen_lengths[traj.gen_length] += 1
        tokens.append(response_token_count(traj))
    src = report.yields.setdefault(traj.data_source, SourceYield())
    src.total += 1
    if traj.correct is not None:
        src.known += 1
        src.correct += int(traj.correct)
    report.tokens_per_step.update(step_histogram(traj.decoding_order))
    report.never_decoded += sum(1 for s in traj.decoding_order if s < 0)


def _lines(path: PathLike, report: InspectReport) -> Iterator[tuple[int, Any]]:
    """`iter_json_lines`, ended by bytes that are not UTF-8 (an error naming their line)."""
    try:
        yield from iter_json_lines(path)
    except UnicodeDecodeError:
        bad = utf8_error(path)
        report.errors.append(bad or TrajectoryError(str(path), report.n_lines + 1, "text", "not UTF-8 text"))
        report.stopped_early = True


def inspect_file(path: PathLike, strict: bool = False, vocab_size: int | None = None,
                 ce_window: int | None = None, rank_window: int | None = None) -> InspectReport:
    """Check every line of `path` and summarise the valid ones.

    strict=True stops at the first bad line (the report then covers the lines before it).
    Duplicate ids are reported as errors on the later line. With ``vocab_size`` every token id
    must lie in [0, vocab_size) (else a row's `settings.vocab_size`, when recorded, is used), as
    `tabom train` checks against its model. Bytes that are not UTF-8 end the reading with an
    error naming their line. ``ce_window``/``rank_window`` set the windows of the content share
    (default: :func:`default_window` of the most common response length).
    """
    report = InspectReport(path=str(path))
    rows: list[tuple[list[int], list[int]]] = []
    chars: list[int] = []
    tokens: list[int] = []
    checker = TrajectoryChecker(path, vocab_size)
    for lineno, item in _lines(path, report):
        report.n_lines += 1
        try:
            if isinstance(item, TrajectoryError):
                raise item
            if is_release_line(item):  # the authors' layouts: id, prompt ids, correct derived
                record = parse_release(item, str(path), lineno)
                report.derived.update(record.derived())
                _add(report, inspection_trajectory(record), chars, tokens)
                continue
            traj = checker.check(item, lineno)
        except TrajectoryError as e:
            report.errors.append(e)
            if strict:
                report.stopped_early = True
                break
            continue
        _add(report, traj, chars, tokens)
        if traj.response_token_ids:
            rows.append(content_row(traj))
    if rows and report.gen_lengths:
        g = report.gen_lengths.most_common(1)[0][0]
        report.content = content_fraction(rows, g, ce_window, rank_window)
    report.response_chars = LengthStats.of(chars)
    report.response_tokens = LengthStats.of(tokens)
    return report


def _counter_text(counter: Counter[str] | Counter[int]) -> str:
    return ", ".join(f"{k} x{n}" for k, n in sorted(counter.items(), key=lambda kv: str(kv[0])))


def render_report(report: InspectReport) -> Group:
    """A rich renderable: overview, response lengths, yield per source, tokens per step."""
    overview = Table(title=f"Trajectories in {Path(report.path).name}", show_header=False)
    overview.add_column("what", style="bold")
    overview.add_column("value")
    overview.add_row("file", report.path)
    stopped = " (stopped at the first bad line)" if report.stopped_early else ""
    overview.add_row("lines read", f"{report.n_lines}{stopped}")
    overview.add_row("valid", str(report.n_valid))
    overview.add_row("bad", str(len(report.errors)))
    overview.add_row("methods", _counter_text(report.methods) or "-")
    overview.add_row("models", _counter_text(report.models) or "-")
    overview.add_row("gen_length", _counter_text(report.gen_lengths) or "-")
    overview.add_row("positions never decoded", str(report.never_decoded))
    for name, n in sorted(report.derived.items()):
        overview.add_row("derived" if name == min(report.derived) else "", f"{name}: {n} line(s)")

    lengths = Table(title="Response length")
    for col in ("unit", "n", "min", "mean", "max"):
        lengths.add_column(col, justify="right" if col != "unit" else "left")
    units = (("chars", report.response_chars), ("tokens (to first EOS)", report.response_tokens))
    for unit, st in units:
        lengths.add_row(unit, str(st.n), str(st.min), f"{st.mean:.1f}", str(st.max))

    yields = Table(title="Yield per data source")
    for col in ("data_source", "correct", "known", "rate", "rows"):
        yields.add_column(col, justify="left" if col == "data_source" else "right")
    for name in sorted(report.yields):
        y = report.yields[name]
        rate = "-" if y.rate is None else f"{100 * y.rate:.1f}%"
        yields.add_row(name, str(y.correct), str(y.known), rate, str(y.total))

    steps = Table(title=f"Tokens per step (mean {report.mean_tokens_per_step:.2f})")
    steps.add_column("tokens in the step", justify="right")
    steps.add_column("steps", justify="right")
    for k in sorted(report.tokens_per_step):
        steps.add_row(str(k), str(report.tokens_per_step[k]))

    parts: list[Table | Text] = [overview, lengths, yields, steps]
    c = report.content
    if c is not None:
        share = Table(title="Content (before the first EOS) in TABOM's windows, expected over the uniform cut")
        for col in ("window", "size", "content share"):
            share.add_column(col, justify="left" if col == "window" else "right")
        for name, key, size in (("CE (M)", "ce", c["ce_window"]), ("ranking (W)", "rank", c["rank_window"])):
            share.add_row(name, str(size), "-" if c[key] is None else f"{c[key]:.3f}")
        parts.append(share)
    status = "all lines valid" if report.ok else f"{len(report.errors)} bad line(s)"
    parts.append(Text(status, style="green" if report.ok else "bold red"))
    return Group(*parts)
