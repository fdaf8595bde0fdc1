"""Wall time of `tabom eval` and `tabom lm-eval` with 1 and 2 processes (torchrun, CPU, gloo).

    python bench/sharded_eval.py                  # 32 problems, the built-in tiny model, 64 tokens
    python bench/sharded_eval.py --problems 64 --threads 1
    python bench/sharded_eval.py --problems 128 --verbs lm-eval --start   # + lm-eval's fixed start

Each run is ``torchrun --nproc_per_node N -m tabom.cli ...`` from start to finish (process start,
model load, decoding, gathering, writing), so the figure includes what a user waits for. Every
process uses ``--threads`` torch threads (default 1), so 2 processes use 2 cores where 1 uses one:
the comparison is "one process doing all the work" against "the same work split over two". The
script checks that both runs wrote the same samples (tabom eval) / responses (lm-eval).

``--start`` also times the fixed cost of one ``tabom lm-eval`` process (2 problems, 1 token in 1
step, no torchrun): with lm-eval's whole task index (``TABOM_LM_EVAL_FULL_INDEX=1``, what every
process paid before) and with the narrow index ``tabom lm-eval`` now builds for local tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK_YAML = """task: bench_sum
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: {gen}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def torchrun(n: int, args: list[str], env: dict[str, str]) -> float:
    """Seconds for one ``torchrun --nproc_per_node n -m tabom.cli ARGS`` run (raises on failure)."""
    import socket

    with socket.socket() as sock:  # a free port: other torchrun jobs on the machine keep theirs
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", str(n), "--master_port",
           str(port), "-m", "tabom.cli", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(" ".join(cmd) + "\n" + proc.stdout[-2000:] + proc.stderr[-6000:])
    return seconds


def _cli(verb: str, data: Path, tasks: Path, out: Path, gen: int) -> list[str]:
    """The ``tabom`` arguments of one run of ``verb`` (eval or lm-eval) writing to ``out``."""
    if verb == "eval":
        return ["eval", "--model", "tiny", "--tasks", f"gsm8k={data}", "--gen-length", str(gen), "--steps", str(gen),
                "--batch-size", "8", "--device", "cpu", "--out", str(out), "--no-progress"]
    return ["lm-eval", "--model", "tabom", "--model_args",
            f"model=tiny,device=cpu,gen_length={gen},steps={gen},batch_size=8",
            "--tasks", "bench_sum", "--include_path", str(tasks), "--output_path", str(out), "--log_samples"]


def _outputs(verb: str, out: Path) -> object:
    """What a run wrote, in a form two runs can be compared by."""
    if verb == "eval":
        return (out / "samples.jsonl").read_text()
    file = next(out.rglob("samples_bench_sum_*.jsonl"))
    return sorted((r["doc_id"], r["filtered_resps"]) for r in map(json.loads, file.read_text().splitlines()))


def _write_task(root: Path, problems: int, gen: int) -> tuple[Path, Path]:
    """``problems`` local sums and an lm-eval task over them -> (data file, task folder)."""
    data = root / f"gsm{problems}.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {a} + {2 * a}?", "answer": f"#### {3 * a}"}) + "\n"
                            for a in range(problems)))
    tasks = root / f"tasks{problems}"
    tasks.mkdir()
    (tasks / "bench.yaml").write_text(TASK_YAML.format(data=data, gen=gen))
    return data, tasks


def _start_seconds(root: Path, env: dict[str, str]) -> dict[str, float]:
    """One lm-eval process on 2 problems, 1 token: seconds with lm-eval's whole task index and the narrow one."""
    data, tasks = _write_task(root, 2, 1)
    seconds = {}
    for label, full in (("whole index", "1"), ("narrow index", "0")):
        cli = _cli("lm-eval", data, tasks, root / f"start_{full}", 1)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tabom.cli", *cli], capture_output=True, text=True,
                              env=dict(env, TABOM_LM_EVAL_FULL_INDEX=full), check=False)
        seconds[label] = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(" ".join(cli) + "\n" + proc.stderr[-6000:])
    return seconds


def main() -> None:
    """Time both verbs at 1 and 2 processes and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--gen", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--verbs", default="eval,lm-eval", help="comma-separated: eval, lm-eval")
    parser.add_argument("--start", action="store_true", help="also time one lm-eval process's fixed start")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env["HF_DATASETS_CACHE"] = str(root / "hf")
        data, tasks = _write_task(root, args.problems, args.gen)
        rows = []
        for verb in args.verbs.split(","):
            seconds, outputs = {}, {}
            for n in (1, 2):
                out = root / f"{verb}{n}"
                seconds[n] = torchrun(n, _cli(verb, data, tasks, out, args.gen), env)
                outputs[n] = _outputs(verb, out)
            rows.append((verb, seconds[1], seconds[2], outputs[1] == outputs[2]))
        start = _start_seconds(root, env) if args.start else {}
    print(f"{args.problems} problems, tiny model, {args.gen} tokens, {args.threads} thread(s) per process")
    print(f"{'verb':<10}{'1 process s':>14}{'2 processes s':>16}{'ratio':>8}  same outputs")
    for verb, one, two, same in rows:
        print(f"{verb:<10}{one:>14.1f}{two:>16.1f}{two / one:>8.2f}  {same}")
    for label, sec in start.items():
        print(f"lm-eval start, 1 process, 2 problems, 1 token, {label}: {sec:.1f} s")


if __name__ == "__main__":
    main()
