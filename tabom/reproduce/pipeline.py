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
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from tabom.outputs import write_text_atomic
from tabom.reproduce.plan import (
    MAIN_METHODS, POWERED_KEYS, TDS_METHODS, Method, Plan, TrainRun, ablation_rows, canonical, grid_methods, sweep_methods,
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
                for seed in self.seeds(method, domain):
                    self.evaluate(domain, method, seed, [("full", "test"), ("parallel", "test")])
            for method in TDS_METHODS:
                for seed in self.seeds(method, domain):
                    self.tds(domain, method, seed)
            # accuracy and tokens per step under threshold decoding (in-domain; the tiny plan's only)
            if getattr(plan, "thresholds", ()):
                from tabom.reproduce.threshold import decode_name

                for method in TDS_METHODS:
                    for seed in self.seeds(method, domain):
                        self.evaluate(domain, method, seed, [(decode_name(t), "test") for t in plan.thresholds],  # type: ignore[attr-defined]
                                      families=plan.families(domain))
        if plan.ablation_domain is not None:
            for _, _, method in ablation_rows():
                for seed in self.seeds(method, plan.ablation_domain):
                    self.evaluate(plan.ablation_domain, method, seed, [("full", "test")])
        # The grid and the sweep are searches on the validation split: the first seed only.
        if plan.grid_domain is not None:
            for _, _, method in grid_methods():
                self.evaluate(plan.grid_domain, method, plan.seeds[0], [("full", "val")])
        if plan.sweep_domain is not None:
            for _, _, method in sweep_methods(self.canvas(plan.sweep_domain)):
                self.evaluate(plan.sweep_domain, method, plan.seeds[0], [("full", "val")])
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Collect results from disk, draw the figures, write results.json and report.md."""
        from tabom.reproduce.report import write_report
        from tabom.reproduce.results import collect

        results = collect(self)
        return write_report(results, self.store.root)

    def canvas(self, domain: str) -> int:
        """Response tokens of the domain's trajectories and of its families' evaluation."""
        plan = self.plan
        return plan.canvas(domain) if isinstance(plan, Plan) else plan.gen_length

    def seeds(self, method: Method, domain: str | None = None) -> list[int | None]:
        """No-SFT is not trained and decodes greedily: one evaluation (seed None). The powered
        comparison's methods train every seed (the plan's ``domain_seeds`` in ``domain``), the
        others the plan's ``secondary_seeds``."""
        if method.run is None:
            return [None]
        n = getattr(self.plan, "secondary_seeds", None)
        if self.resolve(method).key in POWERED_KEYS:
            return list(self.plan.powered_seeds(domain)) if isinstance(self.plan, Plan) else list(self.plan.seeds)
        return list(self.plan.seeds if n is None else self.plan.seeds[:n])

    # ------------------------------------------------------------------ data
    def trajectory_params(self, domain: str) -> dict[str, Any]:
        """What a domain's trajectory file is built with (kept in its marker; a change rebuilds it)."""
        p = self.plan
        return {"model": self.model_key, "families": p.families(domain), "n_per_family": p.n_train, "split": "train",
                "seed": 0, "gen_length": self.canvas(domain), "keep": p.keep, "strategy": "model default",
                "temperature": 0.0}

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
            cfg = BuildConfig(gen_length=self.canvas(domain), keep=self.plan.keep, batch_size=self.plan.decode_batch)
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
            write_text_atomic(path, "\n".join(lines) + "\n")

        self.store.step(f"sft-gt data {domain}", path, params, make)
        return path

    # ------------------------------------------------------------------ training
    def resolve(self, method: Method, domain: str | None = None) -> Method:
        """The method with objective fields equal to the recipe's dropped (so equal runs share a folder).

        With ``domain``, the recipe's values are those the plan sets there (the scaled windows), so a
        sweep row at the domain's own window is the main run.
        """
        if method.run is None:
            return method
        recipe = method.run.recipe
        if recipe not in self._recipe_objective:
            from tabom.config import load_recipe

            self._recipe_objective[recipe] = dict(load_recipe(recipe, check_objective=False).objective.params)
        return Method(method.label, canonical(method.run, self._recipe_objective[recipe]
                                              | self.objective_defaults(domain, recipe)))

    def objective_defaults(self, domain: str | None, recipe: str) -> dict[str, Any]:
        """The objective fields the plan sets for ``recipe`` in ``domain`` (the windows scaled to its canvas)."""
        return self.plan.objective_defaults(domain, recipe) if isinstance(self.plan, Plan) else {}

    def train_overrides(self, domain: str, run: TrainRun, seed: int) -> list[str]:
        """The recipe overrides of one run: output folder, seed, model, data, step count, logging (+ objective fields)."""
        out = self.store.run_dir(domain, run.key, seed)
        items = [f"out={json.dumps(str(out))}", f"seed={seed}", f"model={json.dumps(self.plan.model)}", "report_to=[]",
                 "log_every=1",  # logging only: one metrics.jsonl line per step for the loss curves
                 "threads=0"]  # train on the threads `tabom reproduce --threads` set, not the recipe's 1
        if self.plan.train_steps is not None:
            items.append(f"max_steps={self.plan.train_steps}")
        if getattr(self.plan, "epochs", None) is not None:
            items.append(f"epochs={self.plan.epochs}")  # type: ignore[union-attr]
        if run.data == "gt":
            items += [f"data.path={json.dumps(str(self.store.gt_data(domain)))}", "data.format=prompts", "data.task=null"]
            if getattr(self.plan, "gt_gen_length", None) is not None:
                items.append(f"data.gen_length={self.plan.gt_gen_length}")  # type: ignore[union-attr]
        else:
            items += [f"data.path={json.dumps(str(self.store.trajectories(domain)))}",
                      f"data.gen_length={self.canvas(domain)}"]
        items += [f"objective.{k}={v}" for k, v in sorted(self.objective_defaults(domain, run.recipe).items())]
        return items + run.overrides()

    def recipe_name(self, domain: str, run: TrainRun) -> str:
        """The recipe a run trains with: the run's own tiny recipe (a real checkpoint's plan: the release's)."""
        return run.recipe

    def train(self, domain: str, run: TrainRun, seed: int) -> Path:
        """(2) One post-training run; returns its adapter folder (``final/``)."""
        from tabom.config import load_recipe
        from tabom.reproduce.rank_store import rank0_answer

        out = self.store.run_dir(domain, run.key, seed)
        final = out / "final"
        recipe = self.recipe_name(domain, run)
        overrides = self.train_overrides(domain, run, seed)
        data = self.store.gt_data(domain) if run.data == "gt" else self.store.trajectories(domain)
        data_params = read_json(self.store.marker(data)).get("params") if self.store.marker(data).is_file() else None
        params = {"recipe": recipe, "overrides": overrides, "data": data_params, "base": self.model_key}
        started = out / "reproduce_params.json"

        def other_params() -> bool:  # an interrupted run of other params (unreadable: start over too)
            try:
                return started.is_file() and read_json(started) != json.loads(json.dumps(params))
            except ValueError:
                return True

        # Under torchrun rank 0 alone reads `started` (it deletes `out` right after); every rank waits for
        # the deletion at the step's `done` broadcast before it writes anything there.
        if self.store.stale(final, params) or rank0_answer(self.store, other_params):
            self.store.remove(out)

        def make() -> None:
            from tabom.training.trainer import train

            write_json(started, params)
            train(load_recipe(recipe, overrides), resume=True, console=False)

        self.store.step(f"train {domain}/{run.key}/seed{seed}", final, params, make)
        return final

    # ------------------------------------------------------------------ evaluation
    def decode_settings(self, decode: str, gen_length: int | None = None) -> Any:
        """Settings of ``full`` (a token per step) or ``parallel`` (``parallel_tokens`` per step) decoding
        of ``gen_length`` response tokens (default: the plan's ``gen_length``)."""
        from tabom.eval.evaluate import DecodeSettings

        g = gen_length or self.plan.gen_length
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

    def _model_loader(self, domain: str, method: Method, seed: int | None,
                      folder: Path | None = None) -> Callable[[], Any]:
        """A loader of the model (base + the run's adapter in ``folder``, default ``final/``), loading it
        at most once."""
        cache: dict[str, Any] = {}

        def get() -> Any:
            if "lm" not in cache:
                from tabom.eval.model_spec import load_eval_model

                adapter = None
                if method.run is not None:  # trained by the caller (evaluate / tds) before any step runs
                    assert seed is not None
                    adapter = str(folder or self.store.run_dir(domain, method.run.key, seed) / "final")
                cache["lm"] = load_eval_model(self.plan.model, adapter).eval()
            return cache["lm"]

        return get

    def eval_groups(self, domain: str, method: Method, families: list[str], split: str,
                    limit: int | None = None, decode: str = "") -> dict[tuple[int, int], list[str]]:
        """(response tokens, problems per family) -> the families evaluated so: each family at its
        domain's canvas, SFT-GT at the plan's ``gt_gen_length`` (a canvas that holds its
        reference-style answers); ``limit`` or the plan's in-domain / OOD sizes (the powered size for
        the powered comparison's methods under ``full`` decoding)."""
        plan = self.plan
        if not isinstance(plan, Plan):
            return {(plan.gen_length, limit or plan.n_eval): families}
        gt = method.run is not None and method.run.data == "gt" and plan.gt_gen_length is not None
        groups: dict[tuple[int, int], list[str]] = {}
        for fam in families:
            g = plan.gt_gen_length if gt else plan.family_canvas(fam)
            powered = decode == "full" and method.key in POWERED_KEYS
            n = plan.eval_limit(domain, fam, split, powered) if limit is None else limit
            groups.setdefault((g, n), []).append(fam)  # type: ignore[arg-type]
        return groups

    def _evaluate_groups(self, lm: Any, groups: dict[tuple[int, int], list[str]], decode: str, split: str,
                         extra: dict[str, Any]) -> Any:
        """One report over families decoded at different canvases and sizes (each group its own settings)."""
        from tabom.eval.evaluate import EvalReport, evaluate

        merged: EvalReport | None = None
        per_canvas: dict[str, Any] = {}
        for (g, limit), fams in groups.items():
            settings = self.decode_settings(decode, g)
            report = evaluate(lm, fams, settings, limit=limit, split=split, progress=False, extra_settings=extra)
            per_canvas[f"{g}x{limit}"] = {"families": fams, "limit": limit, "settings": asdict(settings)}
            if merged is None:
                merged = report
            else:
                merged.samples += report.samples
                merged.methods |= report.methods
                merged.seconds += report.seconds
        assert merged is not None
        if len(groups) > 1:
            merged.settings["per_canvas"] = per_canvas
        return merged

    def chosen_folder(self, domain: str, method: Method, seed: int | None) -> Path | None:
        """The checkpoint a trained method is tested at: with ``plan.epochs``, the ``epoch_k`` with the
        best mean val accuracy over the domain's own families (``n_val`` each, full decoding; a tie goes
        to the earlier epoch); else ``final/``. None for No-SFT."""
        from tabom.eval.best_epoch import run_checkpoints

        if method.run is None or seed is None:
            return None
        run_dir = self.store.run_dir(domain, method.run.key, seed)
        if getattr(self.plan, "epochs", None) is None:
            return run_dir / "final"
        checkpoints = run_checkpoints(run_dir)
        if self.plan.train_steps is None and any(name != "final" for name, _ in checkpoints):
            checkpoints = [(n, f) for n, f in checkpoints if n != "final"]  # final/ repeats the last epoch
        fams = self.plan.families(domain)
        groups = self.eval_groups(domain, method, fams, "val", self.plan.n_val)  # type: ignore[union-attr]
        scores: list[tuple[float, int, Path]] = []
        for name, folder in checkpoints:
            path = self.store.eval_json(domain, method.key, seed, "full", f"val-{name}")
            params = {"model": self.model_key, "method": method.key, "seed": seed, "families": fams,
                      "limit": self.plan.n_val, "split": "val", "checkpoint": name,  # type: ignore[union-attr]
                      "settings": {f"{g}x{n}": asdict(self.decode_settings("full", g)) for g, n in groups},
                      "adapter_params": self._adapter_params(domain, method, seed)}
            model = self._model_loader(domain, method, seed, folder)

            def make(path: Path = path, model: Callable[[], Any] = model, name: str = name) -> None:
                report = self._evaluate_groups(model(), groups, "full", "val",
                                               {"decode": "full", "method": method.key, "seed": seed,
                                                "checkpoint": name})
                write_json(path, report.to_json())

            self.store.step(f"val {domain}/{method.key}/{_seed(seed)}/{name}", path, params, make)
            scores.append((statistics.fmean(read_json(path)["accuracy"].values()), -len(scores), folder))
        return max(scores)[2]  # the best mean val accuracy; a tie goes to the earlier epoch

    def evaluate(self, domain: str, method: Method, seed: int | None, jobs: list[tuple[str, str]],
                 families: list[str] | None = None) -> list[Path]:
        """(3) Evaluate one model on the domain's in-domain and OOD families (or ``families``) for each
        (decode, split)."""
        method = self.resolve(method, domain)
        if method.run is not None:
            self.train(domain, method.run, seed)  # type: ignore[arg-type]
        folder = self.chosen_folder(domain, method, seed)
        model = self._model_loader(domain, method, seed, folder)
        families = families or self.plan.eval_families(domain)
        paths = []
        for decode, split in jobs:
            groups = self.eval_groups(domain, method, families, split, decode=decode)
            path = self.store.eval_json(domain, method.key, seed, decode, split)
            params = {"model": self.model_key, "method": method.key, "seed": seed, "families": families,
                      "limit": self.plan.n_eval, "split": split,
                      "settings": {f"{g}x{n}": asdict(self.decode_settings(decode, g)) for g, n in groups},
                      "checkpoint": None if folder is None else folder.name,
                      "adapter_params": self._adapter_params(domain, method, seed)}

            def make(path: Path = path, split: str = split, decode: str = decode,
                     groups: dict[tuple[int, int], list[str]] = groups) -> None:
                report = self._evaluate_groups(model(), groups, decode, split,
                                               {"decode": decode, "method": method.key, "seed": seed,
                                                "checkpoint": None if folder is None else folder.name})
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

        method = self.resolve(method, domain)
        if method.run is not None:
            self.train(domain, method.run, seed)  # type: ignore[arg-type]
        folder = self.chosen_folder(domain, method, seed)
        model = self._model_loader(domain, method, seed, folder)
        path = self.store.tds_json(domain, method.key, seed)
        settings = self.decode_settings("full", self.canvas(domain))
        params = {"model": self.model_key, "method": method.key, "seed": seed, "families": self.plan.families(domain),
                  "n": self.plan.n_tds, "settings": asdict(settings),
                  "checkpoint": None if folder is None else folder.name,
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
