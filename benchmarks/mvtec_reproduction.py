"""The CBiGAN paper's MVTec AD experiment, every category, resumable: CBiGAN, EGBAD, FCBiGAN (textures), GANomaly.

Each job trains one model on one category with the recipe in ``configs/recipes/`` (the paper's
protocol; ``recipe_for`` says which), then validates (anomalib's post-processor learns its
normalisation from the final weights), tests, and appends a row to ``<output>/results.csv``
(and ``.md``), written whole after every job. Re-running the same command skips every
(model, category) already in the results file, so an interrupted run resumes at the first
unfinished job. Jobs go through anomalib's own CLI parser (``AnomalibCLI``) and ``Engine``;
any ``anomalib train`` option can be appended after ``--``, e.g. ``-- --trainer.devices 2``.

Usage:
    python benchmarks/mvtec_reproduction.py --root ./datasets/MVTecAD                # GPU: all of it
    python benchmarks/mvtec_reproduction.py --root ./datasets/MVTecAD --dry-run      # plan and check only
    python benchmarks/mvtec_reproduction.py --root <tree> --smoke                    # 2 training steps a job
    python benchmarks/paper_tables.py                                                 # the paper's tables + ours
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "configs" / "recipes"
RESULTS = Path(__file__).parent / "results" / "mvtec"

TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = ("bottle", "cable", "capsule", "hazelnut", "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper")
ROTATED_OBJECTS = ("bottle", "hazelnut", "metal_nut", "screw")  # paper: orientation independent of abnormality
MODELS = ("Cbigan", "Egbad", "Fcbigan", "Ganomaly")
METRICS = (
    "image_MaxBalancedAccuracy", "image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score", "pixel_AUPR", "pixel_AUPRO",
)  # fmt: skip
# Tiny settings for --smoke: the whole pipeline, two optimiser steps a job.
# The recipes' data is an InMemoryDataModule wrapping MVTecAD: its arguments are under --data.datamodule.
SMOKE_ARGS = ["--trainer.max_steps", "2", "--trainer.max_epochs", "1", "--data.datamodule.train_batch_size", "4",
              "--data.datamodule.eval_batch_size", "4", "--data.datamodule.num_workers", "0"]  # fmt: skip


def recipe_for(model: str, category: str) -> Path | None:
    """The recipe of ``model`` for an MVTec AD ``category``; ``None`` where the model does not apply."""
    if category not in TEXTURES + OBJECTS:
        msg = f"{category!r} is not an MVTec AD category: {TEXTURES + OBJECTS}"
        raise ValueError(msg)
    name = model.lower()
    if name == "ganomaly":
        return RECIPES / "ganomaly_mvtec.yaml"
    if name == "fcbigan":  # textures only (thesis: patch training loses objects' global structure)
        return RECIPES / "fcbigan_mvtec_textures.yaml" if category in TEXTURES else None
    if name in {"cbigan", "egbad"}:
        family = "textures" if category in TEXTURES else "objects_rotated" if category in ROTATED_OBJECTS else "objects"
        return RECIPES / f"{name}_mvtec_{family}.yaml"
    msg = f"no MVTec AD recipe for model {model!r}; choose from {MODELS}"
    raise ValueError(msg)


def read_rows(results: Path) -> list[dict]:
    """Rows of an existing results CSV (empty if none)."""
    if not results.exists():
        return []
    with results.open() as handle:
        return list(csv.DictReader(handle))


def run_job(model: str, category: str, recipe: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    """Train, validate and test one job; or, with ``--dry-run``, only build it and check its data."""
    from anomalib.cli import AnomalibCLI

    from anomalib_cbigan.data import check_mvtec_tree
    from anomalib_cbigan.registry import list_models, model_class, takes_argument

    check_mvtec_tree(args.root, category)  # a clear error naming the missing or broken file, before any work
    cli_args = ["fit", "-c", str(recipe), "--data.datamodule.root", str(args.root), "--data.datamodule.category", category,
                "--default_root_dir", str(args.output / "runs")]  # fmt: skip
    if args.smoke:
        cli_args += SMOKE_ARGS
        if model in list_models() and takes_argument(model_class(model), "patches_per_epoch"):
            cli_args += ["--model.patches_per_epoch", "16"]  # else one FCBiGAN batch is 12,000 patches
    lightning.seed_everything(args.seed, verbose=False)
    cli = AnomalibCLI(args=[*cli_args, *extra], run=False)
    row = {"model": model, "category": category, "family": "texture" if category in TEXTURES else "object",
           "seed": args.seed, "recipe": recipe.name}  # fmt: skip
    if args.dry_run:
        return {**row, "status": "planned"}
    engine, lightning_model, datamodule = cli.engine, cli.model, cli.datamodule
    start = time.perf_counter()
    engine.fit(lightning_model, datamodule=datamodule)
    # A run that stops on max_steps may end between validations: validate the final weights.
    engine.validate(lightning_model, datamodule=datamodule, verbose=False)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics = engine.test(lightning_model, datamodule=datamodule, verbose=False)[0]
    return {
        **row,
        "status": "done",
        **{key: round(float(metrics[key]), 4) if key in metrics else "" for key in METRICS},
        "steps": int(engine.trainer.global_step),
        "train_s": round(train_s, 1),
        "test_s": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    """Run (or plan) every job not yet in the results; return all rows."""
    from anomalib_cbigan.reports import write_tables

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="MVTec AD root (holds carpet/, bottle/, ...)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--categories", nargs="+", default=[*TEXTURES, *OBJECTS])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--dry-run", action="store_true", help="build every job and check its data; train nothing")
    parser.add_argument("--smoke", action="store_true", help="2 steps a job, batch 4: checks the whole path")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # what follows goes to anomalib's parser
        argv, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("anomalib").setLevel(logging.ERROR)
    results = args.output / ("plan.csv" if args.dry_run else "results.csv")
    rows = [] if args.dry_run else read_rows(results)
    done = {(row["model"], row["category"]) for row in rows}  # the jobs a re-run skips
    jobs = [(m, c, recipe_for(m, c)) for m in args.models for c in args.categories]
    todo = [(m, c, r) for m, c, r in jobs if r is not None and (m, c) not in done]
    skipped = len([1 for m, c, r in jobs if r is not None and (m, c) in done])
    print(f"{len(todo)} jobs to run, {skipped} already in {results}", flush=True)
    for number, (model, category, recipe) in enumerate(todo, start=1):
        print(f"[{number}/{len(todo)}] {model} on {category} ({recipe.name})", flush=True)
        rows.append(run_job(model, category, recipe, args, extra))
        write_tables(rows, results.with_suffix(""))  # after every job: an interruption loses at most one job
    if rows:
        print(f"wrote {results}")
    return rows


if __name__ == "__main__":
    main()
