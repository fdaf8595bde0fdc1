"""The steps of `tabom reproduce`, each cached in the reproduction folder.

    repro = Reproduction(make_plan(quick=True), Path("runs/repro"), echo=print)
    results = repro.run()             # trajectories -> training -> evaluation -> TDS -> report
    repro.store.ran()                 # names of the steps that actually ran (the rest were cached)

Order per domain: (1) self-distilled trajectories of the base model on the domain's training
prompts, verified-correct rows kept; the ground-truth prompt/answer file for SFT-GT; (2) the five
post-training rows x seeds, each a tiny recipe with only the data path, output folder, seed and
step count (alike for all) overridden; (3) every model evaluated in-domain and out-of-domain on
the test split with full diffusion decoding (one token per step, steps = gen_length) and with
k-token parallel decoding; (4) TDS of No-SFT, SFT-SD and TABOM on the in-domain test prompts.
Then the ablation (Table 5, test split), and without --quick the lambda x margin grid (Table 7)
and the window sweep (Table 9), both evaluated on the val split only. Finally results.json,
figures and report.md are rebuilt from the artifacts on disk (never cached).

Every step writes one artifact under a deterministic name with a completion marker
(:mod:`tabom.reproduce.store`); a rerun skips finished steps, resumes an interrupted training
run from its last checkpoint, and an interrupted trajectory build from its last batch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from tabom.reproduce.plan import (
    MAIN_METHODS, TDS_METHODS, Method, Plan, TrainRun, ablation_rows, canonical, grid_methods, sweep_methods,
)
from tabom.reproduce.store import Store, read_json, write_json


class Reproduction:
    """Runs a :class:`Plan` into a folder; every method is a cached step."""

    def __init__(self, plan: Plan, out: Path, *, echo: Callable[[str], None] | None = None,
                 command: str = "") -> None:
        self.plan = plan
        self.store = Store(Path(out), echo=echo)
        self.command = command
        self._recipe_objective: dict[str, dict[str, Any]] = {}
        self._model_key: str | None = None

    @property
    def model_key(self) -> str:
        """The base model and its weights' fingerprint: cached steps of another checkpoint are stale."""
        if self._model_key is None:
            from tabom.models.loading import checkpoint_fingerprint

            self._model_key = f"{self.plan.model}@{checkpoint_fingerprint(self.plan.model)}"
        return self._model_key

    # ------------------------------------------------------------------ the whole run
    def run(self) -> dict[str, Any]:
        """Every step of the plan, then results.json, figures and report.md; returns the results."""
        plan = self.plan
        for domain in plan.domains:
            self.trajectories(domain)
            self.gt_data(domain)
            for method in MAIN_METHODS:
                for seed in self.seeds(method):
                    self.evaluate(domain, method, seed, [("full", "test"), ("parallel", "test")])
            for method in TDS_METHODS:
                for seed in self.seeds(method):
                    self.tds(domain, method, seed)
            # accuracy and tokens per step under threshold decoding (in-domain; the tiny plan's only)
            if getattr(plan, "thresholds", ()):
                from tabom.reproduce.threshold import decode_name

                for method in TDS_METHODS:
                    for seed in self.seeds(method):
                        self.evaluate(domain, method, seed, [(decode_name(t), "test") for t in plan.thresholds],  # type: ignore[attr-defined]
                                      families=plan.families(domain))
        if plan.ablation_domain is not None:
            for _, _, method in ablation_rows():
                for seed in self.seeds(method):
                    self.evaluate(plan.ablation_domain, method, seed, [("full", "test")])
        # The grid and the sweep are searches on the validation split: the first seed only.
        if plan.grid_domain is not None:
            for _, _, method in grid_methods():
                self.evaluate(plan.grid_domain, method, plan.seeds[0], [("full", "val")])
        if plan.sweep_domain is not None:
            for _, _, method in sweep_methods(plan.gen_length):
                self.evaluate(plan.sweep_domain, method, plan.seeds[0], [("full", "val")])
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Collect results from disk, draw the figures, write results.json and report.md."""
        from tabom.reproduce.report import write_report
        from tabom.reproduce.results import collect

        results = collect(self)
        return write_report(results, self.store.root)

    def seeds(self, method: Method) -> list[int | None]:
        """No-SFT is not trained and decodes greedily: one evaluation (seed None)."""
        return [None] if method.run is None else list(self.plan.seeds)

    # ------------------------------------------------------------------ data
    def trajectory_params(self, domain: str) -> dict[str, Any]:
        """What a domain's trajectory file is built with (kept in its marker; a change rebuilds it)."""
        p = self.plan
        return {"model": self.model_key, "families": p.families(domain), "n_per_family": p.n_train, "split": "train",
                "seed": 0, "gen_length": p.gen_length, "keep": p.keep, "strategy": "model default", "temperature": 0.0}

    def trajectories(self, domain: str) -> Path:
        """(1) Greedy self-distilled trajectories of the base model; verified-correct rows kept."""
        from tabom.trajectories.builder import meta_path
        from tabom.trajectories.distributed import rejected_path

        path = self.store.trajectories(domain)
        params = self.trajectory_params(domain)
        if self.store.stale(path, params):
            for extra in (meta_path(path), rejected_path(path)):
                extra.unlink(missing_ok=True)
            self.store.remove(path)

        def make() -> None:
            from tabom.models import load
            from tabom.trajectories.builder import BuildConfig, build_trajectories, task_jobs

            lm = load(self.plan.model)
            jobs = [j for fam in params["families"] for j in task_jobs(fam, "train", self.plan.n_train, seed=0)]
            cfg = BuildConfig(gen_length=self.plan.gen_length, keep=self.plan.keep, batch_size=self.plan.decode_batch)
            stats = build_trajectories(lm, jobs, path, cfg, source={"families": params["families"],
                                                                       "n": self.plan.n_train}, progress=False)
            if not stats.meta.get("total", {}).get("kept"):
                total = stats.meta.get("total", {})
                raise RuntimeError(
                    f"{path}: no trajectories kept ({total.get('correct', 0)} correct of "
                    f"{total.get('generated', 0)}): the base model {self.plan.model!r} solves none of the "
                    f"{domain} training prompts, so the self-distilled methods have no data"
                )

        self.store.step(f"trajectories {domain}", path, params, make)
        return path

    def gt_data(self, domain: str) -> Path:
        """(1b) The ground-truth (reference) answers of the same training prompts, for SFT-GT."""
        path = self.store.gt_data(domain)
        params = {"families": self.plan.families(domain), "n_per_family": self.plan.n_train, "split": "train", "seed": 0}

        def make() -> None:
            from tabom.tasks import get_family

            lines = []
            for fam in params["families"]:
                for p in get_family(fam).problems("train", self.plan.n_train, seed=0):
                    lines.append(json.dumps({"id": p.id, "prompt": p.prompt, "answer": p.reference, "data_source": fam}))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.replace(path)

        self.store.step(f"sft-gt data {domain}", path, params, make)
        return path

    # ------------------------------------------------------------------ training
    def resolve(self, method: Method) -> Method:
        """The method with objective fields equal to the recipe's dropped (so equal runs share a folder)."""
        if method.run is None:
            return method
        recipe = method.run.recipe
        if recipe not in self._recipe_objective:
            from tabom.config import load_recipe

            self._recipe_objective[recipe] = dict(load_recipe(recipe, check_objective=False).objective.params)
        return Method(method.label, canonical(method.run, self._recipe_objective[recipe]))

    def train_overrides(self, domain: str, run: TrainRun, seed: int) -> list[str]:
        """The recipe overrides of one run: output folder, seed, model, data, step count, logging (+ objective fields)."""
        out = self.store.run_dir(domain, run.key, seed)
        items = [f"out={json.dumps(str(out))}", f"seed={seed}", f"model={json.dumps(self.plan.model)}", "report_to=[]",
                 "log_every=1",  # logging only: one metrics.jsonl line per step for the loss curves
                 "threads=0"]  # train on the threads `tabom reproduce --threads` set, not the recipe's 1
        if self.plan.train_steps is not None:
            items.append(f"max_steps={self.plan.train_steps}")
        if run.data == "gt":
            items += [f"data.path={json.dumps(str(self.store.gt_data(domain)))}", "data.format=prompts", "data.task=null"]
        else:
            items += [f"data.path={json.dumps(str(self.store.trajectories(domain)))}",
                      f"data.gen_length={self.plan.gen_length}"]
        return items + run.overrides()

    def recipe_name(self, domain: str, run: TrainRun) -> str:
        """The recipe a run trains with: the run's own tiny recipe (a real checkpoint's plan: the release's)."""
        return run.recipe

    def train(self, domain: str, run: TrainRun, seed: int) -> Path:
        """(2) One post-training run; returns its adapter folder (``final/``)."""
        from tabom.config import load_recipe

        out = self.store.run_dir(domain, run.key, seed)
        final = out / "final"
        recipe = self.recipe_name(domain, run)
        overrides = self.train_overrides(domain, run, seed)
        data = self.store.gt_data(domain) if run.data == "gt" else self.store.trajectories(domain)
        data_params = read_json(self.store.marker(data)).get("params") if self.store.marker(data).is_file() else None
        params = {"recipe": recipe, "overrides": overrides, "data": data_params, "base": self.model_key}
        started = out / "reproduce_params.json"
        if self.store.stale(final, params) or (started.is_file() and read_json(started) != json.loads(json.dumps(params))):
            self.store.remove(out)

        def make() -> None:
            from tabom.training.trainer import train

            write_json(started, params)
            train(load_recipe(recipe, overrides), resume=True, console=False)

        self.store.step(f"train {domain}/{run.key}/seed{seed}", final, params, make)
        return final

    # ------------------------------------------------------------------ evaluation
    def decode_settings(self, decode: str) -> Any:
        """Settings of ``full`` (a token per step) or ``parallel`` (``parallel_tokens`` per step) decoding."""
        from tabom.eval.evaluate import DecodeSettings

        g = self.plan.gen_length
        if decode == "full":  # full diffusion decoding: one token per step, steps = gen_length
            return DecodeSettings(gen_length=g, steps=g, tokens_per_step=1, batch_size=self.plan.decode_batch)
        if decode == "parallel":
            k = self.plan.parallel_tokens
            return DecodeSettings(gen_length=g, steps=math.ceil(g / k), tokens_per_step=k,
                                  batch_size=self.plan.decode_batch)
        if decode.startswith("threshold-"):  # tabom.reproduce.threshold: one block, no cache
            from tabom.reproduce.threshold import threshold_of

            return DecodeSettings(gen_length=g, steps=g, threshold=threshold_of(decode),
                                  batch_size=self.plan.decode_batch)
        raise ValueError(f"decode: unknown {decode!r} (full, parallel, threshold-TAU)")

    def _model_loader(self, domain: str, method: Method, seed: int | None) -> Callable[[], Any]:
        """A loader of the model (base + the run's adapter), loading it at most once."""
        cache: dict[str, Any] = {}

        def get() -> Any:
            if "lm" not in cache:
                from tabom.eval.model_spec import load_eval_model

                adapter = None
                if method.run is not None:  # trained by the caller (evaluate / tds) before any step runs
                    assert seed is not None
                    adapter = str(self.store.run_dir(domain, method.run.key, seed) / "final")
                cache["lm"] = load_eval_model(self.plan.model, adapter).eval()
            return cache["lm"]

        return get

    def evaluate(self, domain: str, method: Method, seed: int | None, jobs: list[tuple[str, str]],
                 families: list[str] | None = None) -> list[Path]:
        """(3) Evaluate one model on the domain's in-domain and OOD families (or ``families``) for each
        (decode, split)."""
        from tabom.eval.evaluate import evaluate

        method = self.resolve(method)
        if method.run is not None:
            self.train(domain, method.run, seed)  # type: ignore[arg-type]
        model = self._model_loader(domain, method, seed)
        families = families or self.plan.eval_families(domain)
        paths = []
        for decode, split in jobs:
            path = self.store.eval_json(domain, method.key, seed, decode, split)
            settings = self.decode_settings(decode)
            params = {"model": self.model_key, "method": method.key, "seed": seed, "families": families,
                      "limit": self.plan.n_eval, "split": split, "settings": asdict(settings),
                      "adapter_params": self._adapter_params(domain, method, seed)}

            def make(path: Path = path, settings: Any = settings, split: str = split, decode: str = decode) -> None:
                report = evaluate(model(), families, settings, limit=self.plan.n_eval, split=split, progress=False,
                                  extra_settings={"decode": decode, "method": method.key, "seed": seed})
                write_json(path, report.to_json())

            self.store.step(f"eval {domain}/{method.key}/{_seed(seed)}/{decode}_{split}", path, params, make)
            paths.append(path)
        return paths

    def _adapter_params(self, domain: str, method: Method, seed: int | None) -> Any:
        """The training marker's params (so a retrained adapter invalidates its evaluations)."""
        if method.run is None or seed is None:
            return None
        marker = self.store.marker(self.store.run_dir(domain, method.run.key, seed) / "final")
        return read_json(marker).get("params") if marker.is_file() else None

    def tds(self, domain: str, method: Method, seed: int | None) -> Path:
        """(4) TDS on each in-domain family's test prompts (full decoding, the model's strategy)."""
        from tabom.eval.tds import run_tds

        method = self.resolve(method)
        if method.run is not None:
            self.train(domain, method.run, seed)  # type: ignore[arg-type]
        model = self._model_loader(domain, method, seed)
        path = self.store.tds_json(domain, method.key, seed)
        settings = self.decode_settings("full")
        params = {"model": self.model_key, "method": method.key, "seed": seed, "families": self.plan.families(domain),
                  "n": self.plan.n_tds, "settings": asdict(settings),
                  "adapter_params": self._adapter_params(domain, method, seed)}

        def make() -> None:
            from tabom.tasks import get_family

            out = {}
            for fam in params["families"]:
                prompts = [p.prompt for p in get_family(fam).problems("test", self.plan.n_tds, seed=0)]
                out[fam] = asdict(run_tds(model(), prompts, settings, label=method.label))
            write_json(path, out)

        self.store.step(f"tds {domain}/{method.key}/{_seed(seed)}", path, params, make)
        return path


def _seed(seed: int | None) -> str:
    return "base" if seed is None else f"seed{seed}"
