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
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def _cell(value: Any) -> str:  # noqa: ANN401
    if isinstance(value, float | torch.Tensor):
        return f"{float(value):.3f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of dicts (same keys) as a Markdown table, floats to three decimals."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_tables(rows: Sequence[dict[str, Any]], stem: Path) -> tuple[Path, Path]:
    """Write ``stem.csv`` and ``stem.md`` (each written whole, then renamed into place)."""
    stem = Path(stem)
    md_path, csv_path = stem.with_suffix(".md"), stem.with_suffix(".csv")
    _atomic_write_text(md_path, markdown_table(rows) + "\n")
    columns = list(rows[0])
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: _cell(row.get(c, "")) for c in columns} for row in rows)
    os.replace(tmp, csv_path)
    return md_path, csv_path


@torch.no_grad()
def save_reconstruction_figure(model: Any, datamodule: Any, path: Path, num_images: int = 6) -> Path:  # noqa: ANN401
    """Save input | reconstruction | anomaly map | ground truth: one test image per defect type, then normals.

    Args:
        model: A trained :class:`~anomalib_cbigan.Cbigan` (or any model whose ``model`` has
            ``reconstruct``) with its pre-processor.
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
    _, reconstructions = torch_model.reconstruct(images)
    anomaly_maps = torch_model(images).anomaly_map
    vmax = float(anomaly_maps.max())

    columns = ("input", "reconstruction", "anomaly map", "ground truth")
    figure, axes = plt.subplots(len(items), 4, figsize=(8, 2 * len(items)), squeeze=False)
    for row in range(len(items)):
        panels = (
            ((images[row].cpu().permute(1, 2, 0) + 1) / 2).clamp(0, 1),
            ((reconstructions[row].cpu().permute(1, 2, 0) + 1) / 2).clamp(0, 1),
            anomaly_maps[row, 0].cpu(),
            masks[row].reshape(masks.shape[-2:]).cpu(),
        )
        for col, panel in enumerate(panels):
            axis = axes[row][col]
            if col == 2:  # noqa: PLR2004
                axis.imshow(panel, cmap="jet", vmin=0, vmax=vmax)
            else:
                axis.imshow(panel, cmap="gray" if col == 3 else None, vmin=0, vmax=1)  # noqa: PLR2004
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[col], fontsize=9)
        axes[row][0].set_ylabel(Path(items[row].image_path).parent.name, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    os.replace(tmp, path)
    return path
