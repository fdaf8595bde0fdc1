"""The paper's grid on a real checkpoint, step by step and resumable (``tabom reproduce --plan``).

    repro = RealReproduction(load_real_plan("plan.yaml", model="/ckpt/Dream"), Path("runs/dream"))
    for line in repro.dry_run():          # every step with its estimated GPU-hours
        print(line)
    repro.run()                           # trajectories -> 5 trained methods -> best-of-epochs eval -> TDS -> report

Per domain: (1) the base model's trajectories on the plan's training prompts (verified-correct rows
kept, as the paper), and the prompts with their reference solutions for SFT-GT; (2) SFT-GT,
SFT-SD, dInfer, T3D and TABOM, each with the release recipe of the model and domain
(``dream_prm12k``, ``llada_ling_coder``, ...: LoRA r 16 on q/v, lr 2e-5, 5 epochs) with the
method's block of ``tabom/recipes/methods/paper.yaml`` (``method=sft_sd`` ...); (3) every checkpoint (``epoch_k/``, ``final/``) evaluated on the domain's
validation files with full decoding, the best chosen (:mod:`tabom.eval.best_epoch`), and test
evaluated at it on every benchmark with full and 2-token parallel decoding, in the release's
protocol with each benchmark's release preset; (4) TDS of No-SFT, SFT-SD and TABOM. The report
(Tables 2/3/4/6 with the paper's numbers beside them, results.json, figures) is the tiny run's.
Every step is cached in the output folder (:mod:`tabom.reproduce.store`); a rerun skips finished
steps and resumes an interrupted training run.

Under ``torchrun --nproc_per_node N`` (``shard``: :class:`tabom.eval.sharding.Shard`) every rank
walks the same steps (:class:`tabom.reproduce.rank_store.RankStore`: rank 0 decides what is cached
and writes markers): trajectories are split over the ranks by the builder, training runs as
``tabom train`` does under torchrun (DDP/FSDP through accelerate), every evaluation and TDS decodes
a length-balanced share per rank, and rank 0 writes every JSON file and the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from tabom.eval.sharding import Shard
from tabom.outputs import write_text_atomic
from tabom.reproduce.pipeline import Reproduction
from tabom.reproduce.plan import MAIN_METHODS, TDS_METHODS, Method, TrainRun
from tabom.reproduce.rank_store import RankStore
from tabom.reproduce.real_plan import DEFAULT_TOKENS_PER_SECOND, RealPlan
from tabom.reproduce.store import read_json, write_json

DEFAULT_TRAIN_TOKENS_PER_SECOND = 4000.0
"""A stated training throughput (tokens per second per GPU, LoRA, bf16) for --dry-run when the
plan gives none; not measured here (no GPU)."""


def release_recipe(family: str, domain: str) -> str:
    """The release recipe of a model family and domain (the tiny family borrows Dream's)."""
    model = "llada" if family == "llada" else "dream"
    return f"{model}_{'prm12k' if domain == 'math' else 'ling_coder'}"


class RealReproduction(Reproduction):
    """:class:`Reproduction` with a :class:`RealPlan`: files instead of families, release recipes and protocol."""

    plan: RealPlan  # type: ignore[assignment]

    def __init__(self, plan: RealPlan, out: Path, *, echo: Callable[[str], None] | None = None, command: str = "",
                 shard: Shard | None = None) -> None:
        super().__init__(plan, out, echo=echo, command=command)  # type: ignore[arg-type]
        self.shard = shard or Shard()
        self.store = RankStore(self.store.root, echo=echo if self.shard.is_main else None, shard=self.shard)

    def finish(self) -> dict[str, Any]:
        """results.json, figures and report.md, on rank 0 (the other ranks return an empty dict)."""
        return super().finish() if self.shard.is_main else {}

    def run_methods(self, keys: set[str]) -> None:
        """Only the steps of the methods with these keys (``no_sft``, ``sft_gt``, ``sft_sd``, ``dinfer``,
        ``t3d``, ``tabom``), after the shared data; no report. One process per GPU can each take a
        method (``CUDA_VISIBLE_DEVICES``); a last plain run finds every step cached and writes the report.

        (``run()`` itself is the tiny run's: a RealPlan has no ablation, grid or sweep domain.)
        """
        known = {m.key for m in MAIN_METHODS}
        if keys - known:
            raise ValueError(f"--methods: unknown {sorted(keys - known)} (known: {', '.join(sorted(known))})")
        for domain in self.plan.domains:
            self.trajectories(domain)
            self.gt_data(domain)
            for method in MAIN_METHODS:
                if method.key in keys:
                    for seed in self.seeds(method):
                        self.evaluate(domain, method, seed, [("full", "test"), ("parallel", "test")])
            for method in TDS_METHODS:
                if method.key in keys:
                    for seed in self.seeds(method):
                        self.tds(domain, method, seed)

    # ------------------------------------------------------------------ data
    def train_prompts(self, domain: str) -> list[Any]:
        """The domain's training prompt jobs (capped at ``n_train``)."""
        from tabom.trajectories.builder import file_jobs

        spec = self.plan.domains_spec[domain]
        jobs = file_jobs(spec.train)
        return jobs[: spec.n_train] if spec.n_train else jobs

    def trajectory_params(self, domain: str) -> dict[str, Any]:
        """The trajectory file's inputs (a change rebuilds it)."""
        spec = self.plan.domains_spec[domain]
        stat = Path(spec.train).stat()
        return {"model": self.model_key, "train": spec.train, "train_size": stat.st_size, "n_train": spec.n_train,
                "gen_length": self.plan.gen_length, "keep": self.plan.keep, "strategy": "model default",
                "temperature": 0.0}

    def trajectories(self, domain: str) -> Path:
        """(1) Greedy trajectories of the base model on the training prompts; verified-correct rows kept."""
        path = self.store.trajectories(domain)
        params = self.trajectory_params(domain)
        if self.store.stale(path, params):
            self.store.remove(path)

        def make() -> None:
            from tabom.models import load
            from tabom.trajectories.builder import BuildConfig, build_trajectories

            cfg = BuildConfig(gen_length=self.plan.gen_length, keep=self.plan.keep,
                              batch_size=self._batch(self.plan.gen_length))
            jobs = self.train_prompts(domain)  # the builder gives each rank every world-th job
            stats = build_trajectories(load(self.plan.model, device=self.shard.device()), jobs, path, cfg,
                                       source={"file": params["train"]}, progress=False)
            if self.shard.is_main:
                _rows_in_job_order(path, [j.id for j in jobs])
            if not self.shard.broadcast(stats.meta.get("total", {}).get("kept")):
                raise RuntimeError(f"{path}: no trajectories kept: the base model solves none of the {domain} "
                                   "training prompts (use keep: all to train on every trajectory)")

        self.store.step(f"trajectories {domain}", path, params, make)
        return path

    def gt_data(self, domain: str) -> Path:
        """(1b) The training prompts with their reference responses (``solution``, else ``response``, else ``answer``)."""
        from tabom.trajectories.io import iter_json_lines

        spec = self.plan.domains_spec[domain]
        path = self.store.gt_data(domain)
        params = {"train": spec.train, "n_train": spec.n_train, "size": Path(spec.train).stat().st_size}

        def make() -> None:
            if not self.shard.is_main:
                return
            lines = []
            for lineno, obj in iter_json_lines(spec.train):
                if isinstance(obj, ValueError):
                    raise obj
                prompt = obj.get("prompt") or obj.get("question")
                answer = next((obj[k] for k in ("solution", "response", "answer") if obj.get(k)), None)
                if answer is None:
                    raise ValueError(f"{spec.train}:{lineno}: solution: SFT-GT needs a reference response "
                                     "(solution, response or answer)")
                lines.append(json.dumps({"prompt": prompt, "answer": str(answer), "data_source": domain}))
                if spec.n_train and len(lines) >= spec.n_train:
                    break
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, "\n".join(lines) + "\n")

        self.store.step(f"sft-gt data {domain}", path, params, make)
        return path

    # ------------------------------------------------------------------ training
    def recipe_name(self, domain: str, run: TrainRun) -> str:
        """The release recipe of the plan's model family and the domain."""
        return release_recipe(self.plan.family, domain)

    def train_overrides(self, domain: str, run: TrainRun, seed: int) -> list[str]:
        """The tiny run's overrides, preceded by the method's block of ``tabom/recipes/methods/paper.yaml``
        (``method=sft_gt`` ...; TABOM is the release recipe itself)."""
        method = run.recipe.removeprefix("tiny_")
        return ([] if method == "tabom" else [f"method={method}"]) + super().train_overrides(domain, run, seed)

    # ------------------------------------------------------------------ evaluation
    def _batch(self, gen_length: int) -> int:
        """The plan's decode batch ('auto': 16; the engine's memory planner picks within it)."""
        return self.plan.decode_batch if isinstance(self.plan.decode_batch, int) else 16

    def bench_settings(self, benchmark: str, decode: str) -> Any:
        """The release preset of the benchmark for the plan's model family, full or k-token parallel."""
        from tabom.eval.evaluate import DecodeSettings
        from tabom.eval.presets import apply_preset, release_preset

        s = apply_preset(DecodeSettings(), release_preset(self.plan.family, benchmark))
        g = self.plan.eval_gen_length
        if g is not None:
            block = s.block_length if s.block_length is not None and g % min(s.block_length, g) == 0 else None
            s = apply_preset(s, None, {"gen_length": g, "steps": g})
            s = replace(s, block_length=None if block is None else min(block, g))
        batch = self._batch(s.gen_length)
        if decode == "full":
            return apply_preset(s, None, {"tokens_per_step": 1, "batch_size": batch})
        k = self.plan.parallel_tokens
        return apply_preset(s, None, {"steps": math.ceil(s.gen_length / k), "tokens_per_step": k, "batch_size": batch})

    def _evaluate_files(self, lm: Any, files: dict[str, str], decode: str, split: str, extra: dict[str, Any]) -> Any:
        """One report over several benchmark files, each decoded with its own preset (each rank its share)."""
        from tabom.eval.evaluate import EvalReport, evaluate
        from tabom.eval.sources import resolve_tasks

        merged = EvalReport(model=str(getattr(lm, "name", "")), settings={"protocol": "release", "decode": decode,
                                                                          "split": split, "per_task": {}} | extra)
        for name, file in files.items():
            settings = self.bench_settings(name, decode)
            sources = resolve_tasks(f"{name}={file}", protocol="release")
            report = evaluate(lm, sources, settings, limit=self.plan.eval_limit, split=split, progress=False,
                              shard=self.shard)
            merged.samples += report.samples
            merged.methods |= report.methods
            merged.seconds += report.seconds
            merged.settings["per_task"][name] = asdict(settings)
        return merged

    def _checkpoint_loader(self) -> Callable[[Path | None], Any]:
        from tabom.eval.model_spec import load_eval_model

        def load(folder: Path | None) -> Any:
            return load_eval_model(self.plan.model, None if folder is None else str(folder),
                                   device=self.shard.device()).eval()

        return load

    def chosen_checkpoint(self, domain: str, method: Method, seed: int) -> Path:
        """Best of epochs: every checkpoint on the domain's validation files (full decoding); the best one.

        Without validation files the choice is ``final/``.
        """
        from tabom.eval.best_epoch import mean_accuracy, run_checkpoints

        assert method.run is not None
        run_dir = self.store.run_dir(domain, method.run.key, seed)
        val_files = self.plan.domains_spec[domain].val
        if not val_files:
            return run_dir / "final"
        load = self._checkpoint_loader()
        best: tuple[float, Path] | None = None
        for name, folder in run_checkpoints(run_dir):
            path = self.store.eval_json(domain, method.key, seed, "full", f"val-{name}")
            params = {"model": self.model_key, "checkpoint": str(folder), "files": val_files,
                      "limit": self.plan.eval_limit, "adapter_params": self._adapter_params(domain, method, seed)}

            def make(path: Path = path, folder: Path = folder) -> None:
                report = self._evaluate_files(load(folder), val_files, "full", "val", {"checkpoint": str(folder)})
                if self.shard.is_main:
                    write_json(path, report.to_json())

            self.store.step(f"val {domain}/{method.key}/seed{seed}/{name}", path, params, make)
            acc = read_json(path)["accuracy"]
            score = sum(acc.values()) / max(1, len(acc))
            if best is None or score > best[0]:
                best = (score, folder)
        assert best is not None
        return best[1]

    def _trained_checkpoint(self, domain: str, method: Method, seed: int | None) -> Path | None:
        """Train the (resolved) method if it trains, and return its best-on-val checkpoint (None: base)."""
        if method.run is None:
            return None
        assert seed is not None
        self.train(domain, method.run, seed)
        return self.chosen_checkpoint(domain, method, seed)

    def evaluate(self, domain: str, method: Method, seed: int | None, jobs: list[tuple[str, str]]) -> list[Path]:
        """(3) Test at the best checkpoint on every in-domain and OOD benchmark, per decoding."""
        method = self.resolve(method)
        folder = self._trained_checkpoint(domain, method, seed)
        files = {b: self.plan.test_file(b) for b in self.plan.eval_families(domain)}
        load = self._checkpoint_loader()
        cache: dict[str, Any] = {}
        paths = []
        for decode, split in jobs:
            path = self.store.eval_json(domain, method.key, seed, decode, split)
            params = {"model": self.model_key, "method": method.key, "seed": seed, "files": files,
                      "checkpoint": None if folder is None else str(folder), "limit": self.plan.eval_limit,
                      "settings": {b: asdict(self.bench_settings(b, decode)) for b in files},
                      "adapter_params": self._adapter_params(domain, method, seed)}

            def make(path: Path = path, decode: str = decode, split: str = split) -> None:
                if "lm" not in cache:
                    cache["lm"] = load(folder)
                extra = {"method": method.key, "seed": seed, "checkpoint": None if folder is None else folder.name}
                report = self._evaluate_files(cache["lm"], files, decode, split, extra)
                if self.shard.is_main:
                    write_json(path, report.to_json())

            self.store.step(f"eval {domain}/{method.key}/{'base' if seed is None else f'seed{seed}'}/{decode}_{split}",
                            path, params, make)
            paths.append(path)
        return paths

    def tds(self, domain: str, method: Method, seed: int | None) -> Path:
        """(4) TDS on the first ``tds_n`` test prompts of each in-domain benchmark (full decoding)."""
        from tabom.eval.tds import run_tds
        from tabom.eval.sources import resolve_tasks

        method = self.resolve(method)
        folder = self._trained_checkpoint(domain, method, seed)
        path = self.store.tds_json(domain, method.key, seed)
        benches = self.plan.families(domain)
        params = {"model": self.model_key, "method": method.key, "seed": seed, "n": self.plan.tds_n,
                  "files": {b: self.plan.test_file(b) for b in benches},
                  "checkpoint": None if folder is None else str(folder),
                  "adapter_params": self._adapter_params(domain, method, seed)}

        def make() -> None:
            lm = self._checkpoint_loader()(folder)
            out = {}
            for bench in benches:
                items = resolve_tasks(f"{bench}={self.plan.test_file(bench)}", protocol="release")[0].load(
                    self.plan.tds_n, "test", 0)
                out[bench] = asdict(run_tds(lm, [i.prompt for i in items], self.bench_settings(bench, "full"),
                                            label=method.label, shard=self.shard))
            if self.shard.is_main:
                write_json(path, out)

        self.store.step(f"tds {domain}/{method.key}/{'base' if seed is None else f'seed{seed}'}", path, params, make)
        return path

    # ------------------------------------------------------------------ sizes
    def split_sizes(self, split: str) -> dict[str, int]:
        """Problems per benchmark of the plan's ``test`` files (every domain's, OOD included) or ``val``
        files, after ``eval_limit``; read from the files, nothing decoded."""
        from tabom.eval.sources import resolve_tasks

        plan = self.plan
        files = ({b: plan.test_file(b) for d in plan.domains for b in plan.eval_families(d)} if split == "test"
                 else {b: f for d in plan.domains for b, f in plan.domains_spec[d].val.items()})
        return {b: len(resolve_tasks(f"{b}={f}", protocol="release")[0].load(plan.eval_limit, split, 0))
                for b, f in files.items()}

    def problem_counts(self) -> dict[str, int]:
        """What each decoding step splits over the processes: ``test gsm8k``, ``val gsm8k``, ``tds gsm8k``
        (TDS: the first ``tds_n`` test problems of each in-domain benchmark) -> its number of problems."""
        test = self.split_sizes("test")
        counts = {f"test {b}": n for b, n in test.items()} | {f"val {b}": n for b, n in self.split_sizes("val").items()}
        return counts | {f"tds {b} (tds_n {self.plan.tds_n})": min(self.plan.tds_n, test[b])
                         for d in self.plan.domains for b in self.plan.families(d)}

    # ------------------------------------------------------------------ dry run
    def dry_run(self) -> list[str]:
        """Every step with its response/training tokens and estimated GPU-hours (nothing is run or written)."""
        from tabom.config import load_recipe

        plan = self.plan
        tps = plan.tokens_per_second or DEFAULT_TOKENS_PER_SECOND
        source = "plan's tokens_per_second" if plan.tokens_per_second else "stated default, not measured"
        lines = [f"decoding at {tps:g} response tokens/s per GPU ({source}); training at "
                 f"{DEFAULT_TRAIN_TOKENS_PER_SECOND:g} tokens/s per GPU (stated default, not measured)"]
        total = 0.0

        def add(name: str, tokens: float, rate: float) -> None:
            nonlocal total
            hours = tokens / rate / 3600
            total += hours
            lines.append(f"{name}: {tokens:,.0f} tokens, {hours:.2f} GPU-h")

        sizes = self.split_sizes("test")
        all_val = self.split_sizes("val")
        for domain in plan.domains:
            n_train = len(self.train_prompts(domain))
            add(f"trajectories {domain} ({n_train} prompts)", n_train * plan.gen_length, tps)
            epochs = load_recipe(release_recipe(plan.family, domain), ["model=x", "data.path=x"]).epochs
            val_sizes = {b: all_val[b] for b in plan.domains_spec[domain].val}
            for method in MAIN_METHODS:
                for seed in self.seeds(method):
                    tag = f"{domain}/{self.resolve(method).key}/{'base' if seed is None else f'seed{seed}'}"
                    if method.run is not None:
                        add(f"train {tag} ({epochs} epochs)", n_train * plan.gen_length * 2 * epochs,
                            DEFAULT_TRAIN_TOKENS_PER_SECOND)
                        val_tokens = sum(n * self.bench_settings(b, "full").gen_length for b, n in val_sizes.items())
                        add(f"val {tag} ({epochs + 1} checkpoints)", val_tokens * (epochs + 1), tps)
                    for decode in ("full", "parallel"):
                        tokens = sum(sizes[b] * self.bench_settings(b, decode).steps for b in plan.eval_families(domain))
                        add(f"eval {tag}/{decode}_test", tokens, tps)
            for method in TDS_METHODS:
                for seed in self.seeds(method):
                    n = sum(min(plan.tds_n, sizes[b]) * self.bench_settings(b, "full").gen_length
                            for b in plan.families(domain))
                    add(f"tds {domain}/{self.resolve(method).key}", n, tps)
        lines.append(f"total: {total:.1f} GPU-hours (divide by the number of GPUs for wall time)")
        return lines


def _rows_in_job_order(path: Path, ids: list[str]) -> None:
    """Rewrite a trajectory file with its rows in the order of the jobs (the order one process and
    N processes both give; the builder writes each rank's rows by length), atomically."""
    from tabom.trajectories.io import iter_json_lines

    rank = {job: i for i, job in enumerate(ids)}
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keys = [rank.get(obj.get("id") if isinstance(obj, dict) else None, len(ids)) for _, obj in iter_json_lines(path)]
    if len(keys) == len(lines) and keys != sorted(keys):
        write_text_atomic(path, "".join(line for _, line in sorted(zip(keys, lines), key=lambda p: p[0])))
