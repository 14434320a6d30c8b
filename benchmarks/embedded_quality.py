"""Quality on the embedded texture data: every registered model, trained and untrained, side by side.

Each row is one (model, category, seed): anomalib's test metrics after a short training,
and the same metrics for the same architecture untrained (a validation pass first, so that
anomalib's post-processor has normalisation statistics; without them anomalib's AUROC
squashes raw scores through a sigmoid and reports 0.5). The untrained row is the floor a
broken training would sit on; ``tests/integration/test_quality_floor.py``'s image-AUROC floor was
calibrated from these rows (``--texture-protocol 64``, below). ``image_AUROC_raw`` is the AUROC of
the raw scores, before anomalib's normalisation.

Usage:
    python benchmarks/embedded_quality.py --epochs 40 --seeds 0 1 2 --categories brick grass gravel
    # the paper's texture protocol, the recipe of tests/integration/test_quality_floor.py:
    python benchmarks/embedded_quality.py --models Cbigan Egbad --categories brick --seeds 0 1 2 \
        --texture-protocol 64 --batch-size 8 --epochs 60 --lr 1e-3 --alpha 0.5

Writes ``benchmarks/results/embedded_quality.csv`` and ``.md`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import lightning
from torchvision.transforms import v2
from trained_or_untrained import fit_or_validate_then_test  # benchmarks/, beside this script

from anomalib_cbigan.data import CATEGORIES, TextureAnomalies
from anomalib_cbigan.metrics import raw_image_auroc
from anomalib_cbigan.registry import list_models, model_class, takes_argument
from anomalib_cbigan.reports import write_tables

METRICS = ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score", "pixel_AUPR", "pixel_AUPRO")


def evaluate(
    name: str,
    category: str,
    seed: int,
    epochs: int,
    *,
    model_args: dict,
    alpha: float,
    data_root: Path | None,
    work_dir: Path,
    batch_size: int,
    tile: int | None = None,
) -> list[dict]:
    """Train-and-test and untrained rows for one model, category and seed.

    With ``tile``: the paper's texture protocol (train on random ``tile`` crops at native
    resolution, score each test image as tiles, image score = largest tile score).
    """
    crops = {"train_augmentations": v2.RandomCrop((tile, tile))} if tile else {}
    datamodule = TextureAnomalies(root=data_root, category=category, train_batch_size=batch_size, **crops)
    rows = []
    for trained in (False, True):
        lightning.seed_everything(seed, verbose=False)
        cls = model_class(name)
        extra = {"alpha": alpha} if takes_argument(cls, "alpha") else {}
        if tile:
            extra |= {"input_size": (tile, tile), "tile_images": True}
        model = cls(**(model_args | extra), visualizer=False)
        metrics, train_s, test_s = fit_or_validate_then_test(
            model, datamodule, trained=trained, epochs=epochs, work_dir=work_dir
        )
        raw_auroc = raw_image_auroc(model, datamodule.test_dataloader())
        rows.append({
            "model": name if trained else f"{name} (untrained)",
            "category": category,
            "seed": seed,
            "epochs": epochs if trained else 0,
            "protocol": f"tiles {tile}" if tile else "whole image",
            "training_precision": model_args.get("training_precision", "32"),
            "image_AUROC_raw": raw_auroc,
            **{key: float(metrics[key]) for key in METRICS},
            "train_s": round(train_s, 1),
            "test_s": round(test_s, 1),
        })
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list_models())
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--critic-steps", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--alpha", type=float, default=1e-4, help="for models that take alpha (not Egbad)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--training-precision", default="32", choices=["32", "bf16-mixed"])
    parser.add_argument(
        "--texture-protocol",
        type=int,
        default=None,
        metavar="TILE",
        help="train on TILE-pixel crops, score tiles (models with tile_images); --image-size is then ignored",
    )
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "embedded_quality")
    args = parser.parse_args()
    untileable = [name for name in args.models if not takes_argument(model_class(name), "tile_images")]
    if args.texture_protocol and untileable:
        parser.error(f"--texture-protocol needs models that take tile_images; not: {', '.join(untileable)}")
    warnings.filterwarnings("ignore")
    logging.getLogger("anomalib").setLevel(logging.ERROR)
    model_args = {"input_size": (args.image_size, args.image_size), "critic_steps": args.critic_steps, "lr": args.lr,
                  "training_precision": args.training_precision}  # fmt: skip
    rows = []
    for category in args.categories:
        for name in args.models:
            for seed in args.seeds:
                rows += evaluate(
                    name,
                    category,
                    seed,
                    args.epochs,
                    model_args=model_args,
                    alpha=args.alpha,
                    data_root=args.data_root,
                    work_dir=args.output.parent / "runs",
                    batch_size=args.batch_size,
                    tile=args.texture_protocol,
                )
                write_tables(rows, args.output)  # after every job: an interrupted run keeps what it measured
    print(f"\nwrote {args.output.with_suffix('.md')} and {args.output.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
