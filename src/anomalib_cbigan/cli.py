"""``anomalib-cbigan``: the package's own commands (the models themselves run under ``anomalib``).

``anomalib-cbigan demo`` is the main job: it writes the embedded texture dataset (once),
trains a model on one category with anomalib's ``Engine``, tests it and writes the
metrics table (Markdown and CSV), a reconstruction figure and anomalib's heat-map images.

``anomalib-cbigan infer`` scores a folder of images with an exported OpenVINO model and
writes a heat-map picture per image and a scores table.

``anomalib-cbigan models`` lists the registered models.

Example:
    $ anomalib-cbigan demo --model Cbigan --category brick --epochs 10
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

# The paper's texture protocol (train on random tile crops, score each image tile by tile, image score = largest
# tile score) with a small CPU recipe, not the paper's 1.2 M GPU batches: one critic step per E/G step, a ten times
# larger learning rate and a larger alpha, so that it learns within the main job's few minutes on 2 cores; the
# critic's learning rate three times E's and G's, chosen on validation (benchmarks/sweeps/demo_schedules.yaml).
# Training images are decoded once (InMemoryDataModule), which buys more batches in those minutes than files do.
DEMO_DEFAULTS = {"epochs": 18, "batches_per_epoch": 100, "tile": 64, "image_size": 128, "batch_size": 16,
                 "critic_steps": 1, "critic_lr_ratio": 3.0, "lr": 1e-3, "alpha": 0.5,
                 "weight_average_decay": 0.995}  # fmt: skip


def _demo_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="train and test on the embedded texture data (no download)")
    demo.add_argument("--model", default="Cbigan", help="registered model name (default: Cbigan)")
    demo.add_argument("--category", default="brick", help="brick, grass or gravel (default: brick)")
    demo.add_argument(
        "--epochs", type=int, default=DEMO_DEFAULTS["epochs"], help="training epochs (default: %(default)s)"
    )
    demo.add_argument(
        "--batches-per-epoch",
        type=int,
        default=DEMO_DEFAULTS["batches_per_epoch"],
        help="training batches per epoch, drawn from the images decoded once in memory (default: %(default)s)",
    )
    demo.add_argument(
        "--tile",
        type=int,
        default=DEMO_DEFAULTS["tile"],
        help="tile side in px of the texture protocol (models with tile_images; 0: whole images at --image-size)",
    )
    demo.add_argument(
        "--image-size", type=int, default=DEMO_DEFAULTS["image_size"], help="input side in px without tiles"
    )
    demo.add_argument("--batch-size", type=int, default=DEMO_DEFAULTS["batch_size"], help="training batch size")
    demo.add_argument(
        "--critic-steps",
        type=int,
        default=DEMO_DEFAULTS["critic_steps"],
        help="critic updates per E/G update (paper: 5; the short demo recipe uses 1)",
    )
    demo.add_argument(
        "--critic-lr-ratio",
        type=float,
        default=DEMO_DEFAULTS["critic_lr_ratio"],
        help="the critic's learning rate over E's and G's (paper: 1; default: %(default)s)",
    )
    demo.add_argument("--lr", type=float, default=DEMO_DEFAULTS["lr"], help="Adam learning rate (paper: 1e-4)")
    demo.add_argument("--alpha", type=float, default=DEMO_DEFAULTS["alpha"], help="CBiGAN consistency weight")
    demo.add_argument(
        "--weight-average-decay",
        type=float,
        default=DEMO_DEFAULTS["weight_average_decay"],
        help="decay of the moving average of E's and G's weights, updated every batch, that scores (0: none)",
    )
    demo.add_argument("--data-root", type=Path, default=None, help="cache folder of the embedded data")
    demo.add_argument("--output", type=Path, default=Path("results/demo"), help="where results go")
    demo.add_argument("--seed", type=int, default=42)


def run_demo(args: argparse.Namespace) -> dict[str, float]:
    """Train, test and report; returns the test metrics."""
    import lightning
    from anomalib.engine import Engine
    from torchvision.transforms import v2

    from anomalib_cbigan.data import InMemoryDataModule, TextureAnomalies
    from anomalib_cbigan.registry import model_class, takes_argument
    from anomalib_cbigan.reports import reconstruction_error_ratio, save_reconstruction_figure, write_tables

    lightning.seed_everything(args.seed, verbose=False)
    cls = model_class(args.model)
    tile = args.tile if takes_argument(cls, "tile_images") else 0
    side = tile or args.image_size
    kwargs = {"input_size": (side, side), "critic_steps": args.critic_steps, "lr": args.lr}
    if takes_argument(cls, "alpha"):
        kwargs["alpha"] = args.alpha
    if takes_argument(cls, "critic_lr_ratio"):
        kwargs["critic_lr_ratio"] = args.critic_lr_ratio
    if takes_argument(cls, "weight_average_decay"):
        kwargs.update(weight_average_decay=args.weight_average_decay, weight_average_every=1)
    crops = {}
    if takes_argument(cls, "tile_images"):  # the datamodule crops (below); every batch trains one step
        kwargs.update(tile_images=bool(tile), patches_per_epoch=0)
    if tile:
        crops = {"train_augmentations": v2.RandomCrop((tile, tile))}
    model = cls(**kwargs)
    textures = TextureAnomalies(root=args.data_root, category=args.category, train_batch_size=args.batch_size,
                                **crops)  # fmt: skip
    datamodule = InMemoryDataModule(textures, batches_per_epoch=args.batches_per_epoch)
    print(f"[1/3] Embedded texture data '{args.category}' in {textures.root} (written on first use)", flush=True)
    datamodule.prepare_data()
    how = f"random {tile}x{tile} crops, scored tile by tile" if tile else f"whole images at {side}x{side}"
    print(
        f"[2/3] Training {model.name} for {args.epochs} epochs of {args.batches_per_epoch} batches on {how} "
        "(CPU/GPU as available)",
        flush=True,
    )
    # Validate once, after the last epoch: that pass gives anomalib's post-processor its normalisation
    # and thresholds, and its pixel-threshold search costs more than a training epoch here.
    engine = Engine(max_epochs=args.epochs, default_root_dir=args.output, check_val_every_n_epoch=args.epochs)
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule)
    train_seconds = time.perf_counter() - start
    print("[3/3] Testing", flush=True)
    metrics = engine.test(model, datamodule=datamodule, verbose=False)[0]
    row = {
        "model": model.name,
        "category": args.category,
        **{name: float(value) for name, value in sorted(metrics.items())},
        "reconstruction_error_ratio": reconstruction_error_ratio(model, datamodule),
        "train_s": round(train_seconds, 1),
    }
    out = Path(args.output)
    md_path, csv_path = write_tables([row], out / "metrics")
    figure = save_reconstruction_figure(model, datamodule, out / "reconstructions.png")
    print()
    print(md_path.read_text())
    print(f"metrics:          {md_path} and {csv_path}")
    print(
        f"reconstructions:  {figure} (on normal test images their error is "
        f"{row['reconstruction_error_ratio']:.2f} of a flat image's: 1 = no better, 0 = exact)"
    )
    print(f"heat-maps:        {engine.trainer.default_root_dir}/images (anomalib's visualizer)")
    return row


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``anomalib-cbigan`` command."""
    parser = argparse.ArgumentParser(prog="anomalib-cbigan", description=__doc__.split("\n\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    _demo_parser(subparsers)
    subparsers.add_parser("models", help="list the registered models")
    infer = subparsers.add_parser("infer", help="score a folder of images with an exported OpenVINO model")
    infer.add_argument("--model", type=Path, required=True, help="model.xml written by `anomalib export`")
    infer.add_argument("--images", type=Path, required=True, help="folder of images (searched recursively)")
    infer.add_argument("--output", type=Path, default=Path("results/infer"), help="where pictures and scores go")
    infer.add_argument("--device", default="CPU", help="OpenVINO device (default: CPU)")
    infer.add_argument("--precision", default="f32", choices=["f32", "bf16", "f16"], help="inference precision")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("anomalib").setLevel(logging.WARNING)
    if args.command == "models":
        from anomalib_cbigan.registry import list_models

        print("\n".join(list_models()))
        return 0
    if args.command == "infer":
        from anomalib_cbigan.atomic_files import atomic_write_text
        from anomalib_cbigan.edge_inference import EdgeInferencer, score_folder
        from anomalib_cbigan.reports import markdown_table

        rows = score_folder(EdgeInferencer(args.model, args.device, args.precision), args.images, args.output)
        atomic_write_text(args.output / "scores.md", markdown_table(rows) + "\n")
        failed = [row for row in rows if row["error"]]
        print(
            f"scored {len(rows) - len(failed)} images, {len(failed)} unreadable; pictures and scores in {args.output}"
        )
        for row in failed:
            print(f"  {row['image']}: {row['error']}")
        return 0
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.tile < 0 or args.batch_size < 1 or args.batches_per_epoch < 1:
        parser.error("--tile must be 0 (no tiles) or a side in px, --batch-size and --batches-per-epoch at least 1")
    run_demo(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
