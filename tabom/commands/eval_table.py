"""The accuracy table `tabom eval` and `tabom eval --run` print (one rich table per report).

    print_report(report)   # report: tabom.eval.evaluate.EvalReport
"""

from __future__ import annotations

from typing import Any


def print_report(report: Any) -> None:
    """A rich table: accuracy and count per task (IFEval: strict and loose)."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    s = report.settings
    tps = s.get("tokens_per_step") or (f"threshold {s['threshold']}" if s.get("threshold") else "schedule")
    fast = f", cache={s['cache']}" if s.get("cache", "none") != "none" else ""
    title = (f"{report.model}  (protocol {s.get('protocol', 'tabom')}, {s['strategy']}, gen={s['gen_length']}, "
             f"steps={s['steps']}, "
             f"block={s.get('block_length') or '-'}, T={s['temperature']}, tokens/step={tps}{fast})")
    table = Table(title=title)
    for name, justify in (("task", "left"), ("accuracy", "right"), ("loose", "right"), ("n", "right"),
                          ("scored by", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for task, m in report.metrics().items():
        loose = f"{100 * m['loose']:.1f}%" if "loose" in m else ""
        table.add_row(task, f"{100 * m['accuracy']:.1f}%", loose, str(int(m["n"])), report.methods.get(task, ""))
    Console().print(table)
