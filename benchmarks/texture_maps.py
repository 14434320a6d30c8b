"""Pixel-level quality on the embedded textures: FCBiGAN's full-resolution map next to CBiGAN's.

For each category: CBiGAN (the demo's small CPU recipe, resized input) and FCBiGAN (full
192x192 resolution, patch training), each trained and untrained (validation first, so the
post-processor has statistics), tested through anomalib's Evaluator with image AUROC,
pixel AUROC and pixel AUPR (the thesis's MVTec metric). Pixel metrics are computed on each
model's own map grid (CBiGAN: its input size; FCBiGAN: the full image). Writes
``benchmarks/results/texture_maps.{csv,md}`` and, per model, a figure for the first
category: input, reconstruction, (FCBiGAN: z-scored L_R and L_D), fused map, ground truth.

Usage:
    python benchmarks/texture_maps.py --categories brick grass gravel --fcbigan-epochs 10
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import lightning
from anomalib.metrics import AUPR, AUROC, Evaluator
from trained_or_untrained import fit_or_validate_then_test  # benchmarks/, beside this script

from anomalib_cbigan import Cbigan, Fcbigan
from anomalib_cbigan.data import CATEGORIES, TextureAnomalies
from anomalib_cbigan.reports import save_reconstruction_figure, write_tables

RESULTS = Path(__file__).parent / "results"


def pixel_evaluator() -> Evaluator:
    """Image AUROC, pixel AUROC and pixel AUPR."""
    return Evaluator(
        test_metrics=[
            AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
            AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            AUPR(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
        ]
    )


def build(name: str, args: argparse.Namespace) -> tuple[object, int]:
    """A fresh model of ``name`` and its epochs."""
    common = {"visualizer": False, "evaluator": pixel_evaluator()}
    if name == "Cbigan":
        size = (args.cbigan_size, args.cbigan_size)
        model = Cbigan(input_size=size, critic_steps=1, lr=1e-3, alpha=1e-3, **common)
        return model, args.cbigan_epochs
    model = Fcbigan(
        patches_per_epoch=args.patches_per_epoch,
        lr=args.fcbigan_lr,
        reconstruction_weight=args.fcbigan_reconstruction_weight,
        fusion=args.fcbigan_fusion,
        **common,
    )
    return model, args.fcbigan_epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES))
    parser.add_argument("--models", nargs="+", default=["Cbigan", "Fcbigan"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cbigan-epochs", type=int, default=30)
    parser.add_argument("--cbigan-size", type=int, default=128)
    parser.add_argument("--fcbigan-epochs", type=int, default=10)
    parser.add_argument("--patches-per-epoch", type=int, default=12000)
    parser.add_argument("--fcbigan-lr", type=float, default=2e-4)
    parser.add_argument("--fcbigan-reconstruction-weight", type=float, default=1.0)
    parser.add_argument("--fcbigan-fusion", default="max")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS / "texture_maps")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("anomalib").setLevel(logging.ERROR)
    rows = []
    for category in args.categories:
        datamodule = TextureAnomalies(root=args.data_root, category=category, train_batch_size=8)
        for name in args.models:
            for trained in (False, True):
                lightning.seed_everything(args.seed, verbose=False)
                model, epochs = build(name, args)
                metrics, train_s, _ = fit_or_validate_then_test(
                    model, datamodule, trained=trained, epochs=epochs, work_dir=args.output.parent / "runs",
                    progress=True,
                )  # fmt: skip
                rows.append(
                    {
                        "model": name if trained else f"{name} (untrained)",
                        "category": category,
                        "epochs": epochs if trained else 0,
                        "image_AUROC": float(metrics["image_AUROC"]),
                        "pixel_AUROC": float(metrics["pixel_AUROC"]),
                        "pixel_AUPR": float(metrics["pixel_AUPR"]),
                        "train_s": round(train_s, 1),
                    }
                )
                print(rows[-1], flush=True)
                write_tables(rows, args.output)  # after every job: an interrupted run keeps what it measured
                if trained and category == args.categories[0]:
                    figure = args.output.parent / f"{name.lower()}_maps_{category}.png"
                    save_reconstruction_figure(model, datamodule, figure)
                    print(f"figure: {figure}", flush=True)
    print(f"\nwrote {args.output.with_suffix('.md')} and {args.output.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
