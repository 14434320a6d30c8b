"""Seconds to score one full-resolution image with FCBiGAN on this CPU (torch eager), and where they go.

Scores one 1024x1024 image and one 696x1024 image (the thesis's NanoTWICE size, 1024 wide)
with the default network widths, median of ``--repeats`` runs after ``--warmup`` runs,
under ``torch.inference_mode``. Next to the total, each stage is timed on its own with the
same input (E, G, D's latent path, D's dense joint path by shift-and-stitch, z-score + fusion +
mean filter), so the table says what dominates. The weights do not change the time; the
model is untrained. The thesis reports 0.65 s per 1024x696 image on an RTX 2070.

Usage:
    python benchmarks/fcbigan_speed.py --repeats 5

Writes ``benchmarks/results/fcbigan_speed.{csv,md}``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from anomalib_cbigan.models.fcbigan.anomaly_map import fuse_scores, mean_filter, standardize
from anomalib_cbigan.models.fcbigan.torch_model import FcbiganModel
from anomalib_cbigan_bench.timing import median_seconds, write_speed_tables

SIZES = {"1024x1024": (1024, 1024), "1024x696 (NanoTWICE)": (696, 1024)}


def stage_functions(model: FcbiganModel, images: torch.Tensor) -> dict[str, Callable[[], object]]:
    """The full scoring call and each of its stages, on precomputed inputs."""
    padded = model._pad_to_stride(images)
    latent = model.encoder(padded)
    joint_input = model.critic.joint_input(padded, latent)
    maps = torch.cat(model.score_maps(images), dim=1)

    def fuse_and_filter() -> torch.Tensor:
        z = standardize(maps, model.score_mean, model.score_std)
        return mean_filter(fuse_scores(z, model.fusion, model.fusion_weight, model.score_precision),
                           model.mean_filter_size)  # fmt: skip

    return {
        "total (forward)": lambda: model(images),
        "E encoder": lambda: model.encoder(padded),
        "G generator": lambda: model.generator(latent),
        "D latent path (sub-pixel up-sampling)": lambda: model.critic.latent_path(latent),
        "D joint path, dense (shift-and-stitch)": lambda: model.critic.dense_joint(joint_input),
        "z-score + fusion + mean filter": fuse_and_filter,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fusion", default="max")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "fcbigan_speed")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = FcbiganModel(fusion=args.fusion).eval()
    rows = []
    with torch.inference_mode():
        for label, (height, width) in SIZES.items():
            images = torch.rand(1, 3, height, width) * 2 - 1
            for stage, function in stage_functions(model, images).items():
                seconds = median_seconds(function, args.warmup, args.repeats)
                rows.append({"image (W x H)": label, "stage": stage, "seconds": round(seconds, 3)})
                print(rows[-1], flush=True)
    write_speed_tables(rows, args.output)


if __name__ == "__main__":
    main()
