"""Results as tables and pictures: metric tables (Markdown and CSV) and reconstruction figures.

Example:
    >>> from anomalib_cbigan.reports import markdown_table
    >>> print(markdown_table([{"model": "Cbigan", "image_AUROC": 0.91234}]))
    | model | image_AUROC |
    |---|---|
    | Cbigan | 0.912 |
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from anomalib_cbigan.atomic_files import atomic_path, atomic_write_text


def _cell(value: Any) -> str:
    if isinstance(value, float | torch.Tensor):
        return f"{float(value):.3f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of dicts (same keys) as a Markdown table, floats to three decimals."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_tables(rows: Sequence[dict[str, Any]], stem: Path) -> tuple[Path, Path]:
    """Write ``stem.csv`` and ``stem.md`` (each written whole, then renamed into place)."""
    stem = Path(stem)
    md_path, csv_path = stem.with_suffix(".md"), stem.with_suffix(".csv")
    atomic_write_text(md_path, markdown_table(rows) + "\n")
    columns = list(rows[0])
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: _cell(row.get(c, "")) for c in columns} for row in rows)
    return md_path, csv_path


def _score_map_panels(torch_model: Any, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-score maps of models that have several (FCBiGAN: z-scored L_R and L_D), else none."""
    if not hasattr(torch_model, "score_maps"):
        return {}
    from anomalib_cbigan.models.fcbigan.anomaly_map import standardize

    maps = standardize(torch.cat(torch_model.score_maps(images), dim=1), torch_model.score_mean, torch_model.score_std)
    return {"L_R (z-score)": maps[:, 0], "L_D (z-score)": maps[:, 1]}


def reconstruct(torch_model: Any, images: torch.Tensor) -> torch.Tensor:
    """``G(E(x))`` of pre-processed images; tile by tile, stitched back, for models with the texture protocol."""
    tiler = getattr(torch_model, "tiler", None)
    if tiler is None:
        return torch_model.reconstruct(images)[1]
    return tiler.untile(torch_model.reconstruct(tiler.tile(images))[1])


@torch.no_grad()
def reconstruction_error_ratio(model: Any, datamodule: Any, batch_size: int = 16) -> float:
    """How closely ``G(E(x))`` follows the normal test images: its mean absolute error over them divided by that
    of a flat image of each image's mean colour (1: no better than a flat image, 0: exact).

    An untrained or collapsed generator (one grey image for every input) scores about 1, so the figure says
    whether the reconstructions of :func:`save_reconstruction_figure` follow their inputs.
    """
    dataset = datamodule.test_data
    normal = [i for i, label in enumerate(dataset.samples.label_index) if not label]
    torch_model = model.model.eval()
    device = next(torch_model.parameters()).device
    error = flat_error = 0.0
    for start in range(0, len(normal), batch_size):
        images = torch.stack([dataset[i].image for i in normal[start : start + batch_size]])
        images = model.pre_processor.transform(images).to(device)
        error += float((images - reconstruct(torch_model, images)).abs().sum())
        flat_error += float((images - images.mean(dim=(2, 3), keepdim=True)).abs().sum())
    return error / flat_error


@torch.no_grad()
def save_reconstruction_figure(model: Any, datamodule: Any, path: Path, num_images: int = 6) -> Path:
    """Save input | reconstruction | [score maps] | anomaly map | ground truth, one row per test image.

    Rows: one test image per defect type, then normals. Models with several score maps
    (FCBiGAN's z-scored ``L_R`` and ``L_D``) get a column for each before the fused map.

    Args:
        model: A trained model of this package (its ``model`` has ``reconstruct``) with its pre-processor.
        datamodule: A set-up anomalib datamodule; its test set is used.
        path: PNG to write.
        num_images: Rows of the figure.
    """
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    dataset = datamodule.test_data
    # One image of each defect type (the folder it is in), then normal images.
    first_of_type: dict[str, int] = {}
    for index, image_path in enumerate(dataset.samples.image_path):
        first_of_type.setdefault(Path(image_path).parent.name, index)
    normal = [i for i, label in enumerate(dataset.samples.label_index) if not label]
    defects = [i for name, i in sorted(first_of_type.items()) if name != "good"]
    picks = defects[: max(1, num_images - 2)]
    picks += normal[: num_images - len(picks)]
    items = [dataset[i] for i in picks]
    images = torch.stack([item.image for item in items])
    masks = torch.stack([torch.as_tensor(item.gt_mask).float() for item in items])
    transform = model.pre_processor.transform
    images, masks = transform(images, masks)
    torch_model = model.model.eval()
    device = next(torch_model.parameters()).device
    images = images.to(device)
    reconstructions = reconstruct(torch_model, images)
    anomaly_maps = torch_model(images).anomaly_map[:, 0]

    def as_rgb(batch: torch.Tensor) -> list[torch.Tensor]:
        return [((image.cpu().permute(1, 2, 0) + 1) / 2).clamp(0, 1) for image in batch]

    # column name -> (images, colour map or None for RGB, colour range)
    columns: dict[str, tuple[Any, str | None, tuple[float, float]]] = {
        "input": (as_rgb(images), None, (0, 1)),
        "reconstruction": (as_rgb(reconstructions), None, (0, 1)),
    }
    for name, maps in _score_map_panels(torch_model, images).items():
        columns[name] = (maps.cpu(), "jet", (float(maps.min()), float(maps.max())))
    columns["anomaly map"] = (anomaly_maps.cpu(), "jet", (float(anomaly_maps.min()), float(anomaly_maps.max())))
    columns["ground truth"] = (masks.reshape(len(items), *masks.shape[-2:]).cpu(), "gray", (0, 1))

    figure, axes = plt.subplots(len(items), len(columns), figsize=(2 * len(columns), 2 * len(items)), squeeze=False)
    for col, (title, (panels, cmap, (vmin, vmax))) in enumerate(columns.items()):
        for row in range(len(items)):
            axis = axes[row][col]
            axis.imshow(panels[row], cmap=cmap, vmin=vmin, vmax=vmax)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=9)
    for row, item in enumerate(items):
        axes[row][0].set_ylabel(Path(item.image_path).parent.name, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)
    return path
