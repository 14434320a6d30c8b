"""Where a DRAEM training batch's time goes on this machine, at the grid sweeps' settings (anomalib's ``Draem``,
Perlin-noise anomalies without DTD, 128-px images, batch 8, 16 and 32).

The grid sweeps give every model the same minutes of training; DRAEM trains only a handful of batches in them
(``trained_steps`` in ``results/sweeps/grid*``). This splits its training step, as anomalib's
``Draem.training_step`` runs it, into the synthetic anomalies (``PerlinAnomalyGenerator``, one image at a time),
the forward pass with the loss, the backward pass and Adam's step, on real grid training images resized to 128 px,
and counts the forward and backward FLOPs (``torch.utils.flop_counter``), so the achieved rate says whether the
network's size or something else sets the pace.

Run:    python benchmarks/draem_step_profile.py            (about 6 min alone on 2 cores)
Writes: benchmarks/results/draem_step_profile.{csv,md}
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from anomalib.models import Draem
from anomalib_cbigan_bench.data_roots import data_root
from torch.utils.flop_counter import FlopCounterMode
from torchvision.io import ImageReadMode, read_image
from torchvision.transforms.v2 import functional

from anomalib_cbigan.reports import write_tables

NO_DTD = Path(__file__).parent / "sweeps" / "no_dtd"  # no texture images: Perlin-noise anomalies, as the sweeps


def grid_images(root: Path, count: int, size: int) -> torch.Tensor:
    """The first ``count`` grid training images, as RGB floats in [0, 1], resized to ``size`` (the sweeps'
    pre-processor)."""
    paths = sorted((root / "grid" / "train" / "good").glob("*.png"))[:count]
    if len(paths) < count:
        msg = f"{root / 'grid' / 'train' / 'good'} holds {len(paths)} images, {count} needed (--root, MVTEC_ROOT)"
        raise SystemExit(msg)
    images = [read_image(str(path), mode=ImageReadMode.RGB).float().div(255) for path in paths]
    return functional.resize(torch.stack(images), [size, size], antialias=True)


def timed_step(model: Draem, optimizer: torch.optim.Optimizer, images: torch.Tensor) -> dict[str, float]:
    """One training step as ``Draem.training_step`` runs it, each part timed in seconds."""
    start = time.perf_counter()
    augmented, mask = model.augmenter(images)
    anomalies = time.perf_counter()
    reconstruction, prediction = model.model(augmented)
    loss = model.loss(images, reconstruction, mask, prediction)
    forward = time.perf_counter()
    loss.backward()
    backward = time.perf_counter()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    end = time.perf_counter()
    return {"anomalies_s": anomalies - start, "forward_s": forward - anomalies, "backward_s": backward - forward,
            "optimizer_s": end - backward, "batch_s": end - start}  # fmt: skip


def step_flops(model: Draem, images: torch.Tensor) -> int:
    """Forward and backward FLOPs of one training step on ``images`` (no optimiser step)."""
    augmented, mask = model.augmenter(images)
    with FlopCounterMode(display=False) as counter:
        reconstruction, prediction = model.model(augmented)
        model.loss(images, reconstruction, mask, prediction).backward()
    model.model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=data_root("MVTEC_ROOT"), help="MVTec AD (default: $MVTEC_ROOT)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps a batch size, after one warm-up step")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "draem_step_profile")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Draem(dtd_dir=NO_DTD, visualizer=False)
    model.train()
    optimizer = torch.optim.Adam(model.model.parameters(), lr=1e-4)  # Draem.configure_optimizers'
    parameters = sum(parameter.numel() for parameter in model.model.parameters())
    images = grid_images(args.root, max(args.batch_sizes), args.image_size)
    flops_per_image = step_flops(model, images[:1])
    rows = []
    for batch_size in args.batch_sizes:
        batch = images[:batch_size]
        timed_step(model, optimizer, batch)  # warm-up: oneDNN picks and caches its kernels
        steps = [timed_step(model, optimizer, batch) for _ in range(args.repeats)]
        mean = {key: sum(step[key] for step in steps) / len(steps) for key in steps[0]}
        rows.append({
            "batch": batch_size,
            "image_size": args.image_size,
            "parameters_M": round(parameters / 1e6, 1),
            "GFLOP/batch": round(flops_per_image * batch_size / 1e9, 1),
            "s/batch": round(mean["batch_s"], 2),
            **{f"{part}_%": round(100 * mean[f"{part}_s"] / mean["batch_s"], 1)
               for part in ("anomalies", "forward", "backward", "optimizer")},
            "GFLOP/s": round(flops_per_image * batch_size / (mean["forward_s"] + mean["backward_s"]) / 1e9, 1),
            "batches_in_4_min": int(240 / mean["batch_s"]),
            "threads": torch.get_num_threads(),
        })  # fmt: skip
        print(rows[-1], flush=True)
    write_tables(rows, args.output)
    print(f"wrote {args.output}.csv and .md")


if __name__ == "__main__":
    main()
