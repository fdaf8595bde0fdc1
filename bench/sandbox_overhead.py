"""Benchmark: the cost of one ``run_python("print(1)")`` call, isolated sandbox vs an older version.

    python bench/sandbox_overhead.py --n 30                      # this tree only
    python bench/sandbox_overhead.py --n 30 --old 58d7ebe        # interleaved with that commit's sandbox

``--old COMMIT`` loads ``tabom/tasks/sandbox.py`` as it was at COMMIT (``git show``) as a separate
module (the pre-namespace sandbox at 58d7ebe: ``python -I`` + rlimits + audit hook + ``unshare
--net``) and alternates calls between the two, so a machine whose load changes affects both alike.
Each call runs the same tiny program with ``timeout_s=10``; the first call of each (isolation
probe, warm caches) is not timed. Prints median, 10th and 90th percentile and minimum in ms.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from types import ModuleType

from tabom.tasks import sandbox


def load_old(commit: str) -> ModuleType:
    """``tabom/tasks/sandbox.py`` at ``commit`` imported as the module ``old_sandbox``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = subprocess.run(["git", "show", f"{commit}:tabom/tasks/sandbox.py"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    path = os.path.join(tempfile.mkdtemp(prefix="tabom_bench_"), "old_sandbox.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location("old_sandbox", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_sandbox"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """Time ``--n`` calls of each sandbox and print one line per sandbox."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--old", default=None, help="commit whose sandbox to compare with")
    args = parser.parse_args()
    versions: dict[str, ModuleType] = {"this tree": sandbox}
    if args.old:
        versions = {f"at {args.old}": load_old(args.old), **versions}
    times: dict[str, list[float]] = {name: [] for name in versions}
    for module in versions.values():
        assert module.run_python("print(1)", timeout_s=10).stdout == "1\n"
    for _ in range(args.n):
        for name, module in versions.items():
            t0 = time.perf_counter()
            r = module.run_python("print(1)", timeout_s=10)
            times[name].append((time.perf_counter() - t0) * 1000)
            assert r.ok and r.stdout == "1\n", r
    print(f"{platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, n={args.n}, "
          f"isolation {sandbox.isolation()}")
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=10)
        print(f"{name}: median {statistics.median(ts):.0f} ms, p10 {q[0]:.0f}, p90 {q[-1]:.0f}, min {min(ts):.0f}")


if __name__ == "__main__":
    main()
