"""`tabom reproduce`: the paper's experiments on the tiny model, cached and resumable, with a report.

    tabom reproduce --quick --out runs/repro_quick          # math only, one seed, not powered (minutes on 2 CPUs)
    tabom reproduce --out runs/repro                        # both domains, powered, ablation, grid, sweep (about 2 h)
    tabom reproduce --quick --n-train 8 --n-eval 4 --train-steps 3 --gen-length 16 --model /tmp/tiny

Rerunning the same command skips every finished step (see docs/reproduce.md); the report is
rebuilt from the artifacts each time. DIR/report.md and DIR/results.json are the outputs.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer


OPTIONS = {field: "--" + field.replace("_", "-") for field in (
    "seeds", "domains", "n_train", "n_eval", "n_tds", "train_steps", "gen_length", "decode_batch", "thresholds",
    "epochs", "n_val", "n_eval_ood", "n_eval_powered", "secondary_seeds", "domain_seeds")}
"""`make_plan`/`Plan` error prefix -> the option that sets the field (for `tabom.errors.options_named`)."""


def _thresholds(text: str) -> tuple[float, ...]:
    """``"0.9,0.7"`` -> (0.9, 0.7); ``"none"`` or empty -> (); a non-number is a ValueError."""
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if parts in ([], ["none"]):
        return ()
    try:
        return tuple(float(t) for t in parts)
    except ValueError:
        raise ValueError(f"thresholds: {text!r} is not a comma-separated list of numbers in (0, 1]") from None


def _domain_seeds(text: str | None) -> dict[str, int] | None:
    """``"math=5,code=4"`` -> {"math": 5, "code": 4}; ``"none"`` -> {}; None -> None (the default)."""
    if text is None:
        return None
    if text.strip() in ("", "none"):
        return {}
    out = {}
    for item in text.split(","):
        dom, _, n = item.partition("=")
        if not n.strip().isdigit():
            raise ValueError(f"domain_seeds: {item.strip()!r} is not DOMAIN=N (e.g. math=5)")
        out[dom.strip()] = int(n)
    return out


def reproduce(
    quick: bool = typer.Option(False, "--quick", help="Math only, one seed, small sets, no grid or sweep."),
    seeds: Optional[int] = typer.Option(None, help="Training seeds of SFT-SD and TABOM (default 1 with --quick, else 3, and 5 on math: see --domain-seeds and --secondary-seeds)."),
    out: Optional[Path] = typer.Option(None, help="Reproduction folder (artifacts, report.md, results.json); default runs/reproduce, or runs/reproduce_quick with --quick so a quick run never replaces a full run's steps."),
    model: str = typer.Option("tiny", help="Base model: 'tiny' or a local model folder."),
    n_train: Optional[int] = typer.Option(None, help="Training prompts per family (default 64 quick, 400 full)."),
    n_eval: Optional[int] = typer.Option(None, help="Test problems per in-domain family that every method is evaluated on, at most the family's test split (default 16 quick, 64 full)."),
    n_tds: Optional[int] = typer.Option(None, help="TDS prompts per in-domain family (default 8 quick, 16 full)."),
    train_steps: Optional[int] = typer.Option(None, help="Cap on the optimizer steps of every run alike (default: none, "
                                                         "the epochs decide)."),
    epochs: Optional[int] = typer.Option(None, help="Epochs of every run; each epoch's checkpoint is evaluated on val "
                                                    "and test taken at the best (default 3 quick, 5 full)."),
    n_eval_ood: Optional[int] = typer.Option(None, help="Test problems per out-of-domain family (default 16; never "
                                                        "above --n-eval)."),
    n_val: Optional[int] = typer.Option(None, help="Val problems per in-domain family for the choice of the epoch "
                                                   "(default 16)."),
    n_eval_powered: Optional[int] = typer.Option(None, help="In-domain test problems per family of the powered "
                                                            "comparison (No-SFT, SFT-SD, TABOM; full decoding); default "
                                                            "600 full, --n-eval quick; never below --n-eval."),
    domain_seeds: Optional[str] = typer.Option(None, help="Seeds of SFT-SD and TABOM per domain, e.g. 'math=5' "
                                                          "(default math=5 without --quick and --seeds; 'none': "
                                                          "--seeds everywhere)."),
    secondary_seeds: Optional[int] = typer.Option(None, help="Seeds of SFT-GT, dInfer, T3D and the ablation's own rows "
                                                             "(the first N of --seeds; default 1 full, all quick)."),
    gen_length: Optional[int] = typer.Option(None, help="One response length for every domain, SFT-GT included "
                                                        "(default: per-domain canvases fitted to the answers, math 32, "
                                                        "code 40, ood 64, and 96 for SFT-GT)."),
    decode_batch: int = typer.Option(64, help="Prompts decoded together."),
    domains: Optional[str] = typer.Option(None, help="Comma-separated domains (default: math with --quick, else math,code)."),
    keep_all: bool = typer.Option(False, "--keep-all", help="Train on every trajectory, not only verified-correct ones (random test models)."),
    threads: int = typer.Option(0, help="torch CPU threads (0: torch's default, one per core)."),
    thresholds: str = typer.Option("0.9,0.7,0.5", help="Thresholds of the parallel-decoding-by-threshold table "
                                                        "(No-SFT, SFT-SD, TABOM; comma-separated, each in (0, 1]; "
                                                        "'none' skips it)."),
    plan_file: Optional[Path] = typer.Option(None, "--plan", help="A real checkpoint's plan (PLAN.yaml: training "
                                             "prompts, validation/test benchmark files; docs/real_checkpoints.md): "
                                             "the paper's grid on --model in the release's protocol."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --plan: list every step with its estimated "
                                                          "GPU-hours and run nothing."),
    methods: Optional[str] = typer.Option(None, help="With --plan: only these methods' steps, no report "
                                                     "(no_sft,sft_gt,sft_sd,dinfer,t3d,tabom; one per GPU)."),
) -> None:
    """Trajectories, six methods x seeds, in-domain/OOD evaluation (full and parallel), TDS, ablation, report."""
    import torch

    from tabom.errors import options_named
    from tabom.reproduce.pipeline import Reproduction
    from tabom.reproduce.plan import make_plan

    from transformers.utils import logging as hf_logging

    if plan_file is not None:
        from tabom.commands.reproduce_real import reproduce_real  # noqa: PLC0415

        reproduce_real(plan_file, model, out, dry_run=dry_run, threads=threads, methods=methods)
        return
    if dry_run:
        raise ValueError("--dry-run: only with --plan (a real checkpoint's plan)")
    # A bad count or domain is a ValueError naming the option's field: `tabom.cli.main` prints it
    # as one `error:` line (exit 2) before anything is loaded or written.
    if threads < 0:
        raise ValueError(f"--threads: must be >= 0, got {threads}")
    with options_named(OPTIONS):
        plan = make_plan(quick, model=model, seeds=seeds, n_train=n_train, n_eval=n_eval, n_tds=n_tds,
                         train_steps=train_steps, gen_length=gen_length, decode_batch=decode_batch,
                         epochs=epochs, n_val=n_val, n_eval_ood=n_eval_ood, n_eval_powered=n_eval_powered,
                         secondary_seeds=secondary_seeds, domain_seeds=_domain_seeds(domain_seeds),
                         keep="all" if keep_all else "correct",
                         domains=tuple(d.strip() for d in domains.split(",") if d.strip()) if domains is not None else None)
        plan = replace(plan, thresholds=_thresholds(thresholds))
    if threads:
        torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load would drown the step log
    command = "tabom reproduce " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else ""
    out = out or Path("runs/reproduce_quick" if quick else "runs/reproduce")
    repro = Reproduction(plan, out, echo=typer.echo, command=command)
    results = repro.run()
    typer.echo(f"{out / 'report.md'}: written ({len(repro.store.ran())} steps ran, "
               f"{len(repro.store.log) - len(repro.store.ran())} cached)")
    for line in results.get("reading", []):
        typer.echo(f"  - {line}")
