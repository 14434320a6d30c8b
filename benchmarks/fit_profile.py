"""Where a training batch's time goes in a real fit: Lightning's SimpleProfiler over a short fit of CBiGAN with the
grid sweeps' data path (images decoded once into memory, brightness standardised, 91-px crops rotated, 64-px
centres), once per variant of the batch augmentation, alternating, in one process.

Variants: ``cached`` (the library's: crops on the uint8 images, the whole images' brightness scale applied to
the crops) and ``plain`` (every whole image converted to floats and standardised, then cropped: the order before
``augment_cached``), each with the gradient penalty on every critic step; and ``cached, penalty every 4`` (the lazy
penalty, ``penalty_every=4``). Writes ``results/fit_profile.csv`` and ``.md``: per variant and round, the fit's
seconds, and the mean milliseconds a batch in the data module's ``on_after_batch_transfer`` (the augmentation) and
in the training step.

Run:    python benchmarks/fit_profile.py            (about 5 min alone on 2 cores)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any
from unittest import mock

from anomalib.engine import Engine
from anomalib_cbigan_bench.data_roots import data_root
from lightning import seed_everything
from lightning.pytorch.profilers import SimpleProfiler
from torchvision.transforms import v2

from anomalib_cbigan import Cbigan, LocalMVTecAD
from anomalib_cbigan.data import InMemoryDataModule
from anomalib_cbigan.data.batch_augmentation import augment_batch
from anomalib_cbigan.reports import write_tables

AUGMENTATION = "[LightningDataModule]InMemoryDataModule.on_after_batch_transfer"
TRAINING_STEP = "[Strategy]SingleDeviceStrategy.training_step"
VARIANTS = ("plain", "cached", "cached, penalty every 4")


def plain_order(self: InMemoryDataModule, batch: Any, dataloader_idx: int) -> Any:  # noqa: ANN401
    """``InMemoryDataModule.on_after_batch_transfer`` as it was: whole images to floats, then every augmentation."""
    from anomalib.data import ImageBatch

    from anomalib_cbigan.data.in_memory import CachedBatch

    del dataloader_idx
    if not isinstance(batch, CachedBatch):
        return batch
    images = augment_batch(self.train_augmentations, batch.images.float().div_(255))
    indices = batch.indices.tolist()
    return ImageBatch(image=images, gt_label=batch.indices.new_zeros(len(indices)).bool(),
                      image_path=[self.image_paths[index] for index in indices])  # fmt: skip


def profiled_fit(root: Path, steps: int, penalty_every: int = 1) -> dict[str, float]:
    """A ``steps``-batch fit of the grid schedule sweep's 1-critic-step candidate; seconds and ms a batch."""
    seed_everything(0)
    crops = v2.Compose([v2.RandomCrop(91), v2.RandomRotation(degrees=[-45, 0]), v2.CenterCrop(64)])
    data = LocalMVTecAD(root=root, category="grid", standardize_brightness=0.45, val_split_mode="synthetic",
                        val_split_ratio=0.2, synthetic_anomalies="defects", seed=0, train_batch_size=16,
                        eval_batch_size=8, num_workers=0, train_augmentations=crops)  # fmt: skip
    datamodule = InMemoryDataModule(data, batches_per_epoch=100)
    model = Cbigan(input_size=(64, 64), tile_images=True, patches_per_epoch=0, lr=1e-3, batch_size=16, alpha=0.1,
                   critic_steps=1, critic_lr_ratio=3.0, penalty_every=penalty_every, visualizer=False)  # fmt: skip
    profiler = SimpleProfiler()
    engine = Engine(max_steps=steps, profiler=profiler, logger=False, enable_progress_bar=False,
                    check_val_every_n_epoch=1_000_000, enable_model_summary=False)  # fmt: skip
    start = time.perf_counter()
    engine.fit(model, datamodule=datamodule)
    seconds = time.perf_counter() - start
    times = profiler.recorded_durations
    return {"fit_s": seconds, "augmentation_ms_per_batch": 1000 * sum(times[AUGMENTATION]) / steps,
            "training_step_ms_per_batch": 1000 * sum(times[TRAINING_STEP]) / steps}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=data_root("MVTEC_ROOT"), help="MVTec AD (default: $MVTEC_ROOT)")
    parser.add_argument("--steps", type=int, default=400, help="training batches a fit")
    parser.add_argument("--rounds", type=int, default=2, help="fits per variant, alternating")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "fit_profile")
    args = parser.parse_args()
    rows = []
    for round_ in range(args.rounds):
        for variant in VARIANTS:
            penalty_every = 4 if variant.endswith("every 4") else 1
            if variant == "plain":
                with mock.patch.object(InMemoryDataModule, "on_after_batch_transfer", plain_order):
                    row = profiled_fit(args.root, args.steps)
            else:
                row = profiled_fit(args.root, args.steps, penalty_every)
            rows.append({"variant": variant, "round": round_, "steps": args.steps, **row})
            print(rows[-1], flush=True)
    for row in rows:
        plain = next(other for other in rows if other["variant"] == "plain" and other["round"] == row["round"])
        row["speed_vs_plain"] = plain["fit_s"] / row["fit_s"]
    write_tables(rows, args.output)
    print(f"wrote {args.output}.csv and .md")


if __name__ == "__main__":
    main()
