"""Tables and figures: written where asked, whole, and never over the data."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from anomalib_cbigan import TextureAnomalies, list_models, model_class
from anomalib_cbigan.reports import (
    markdown_table,
    reconstruction_error_ratio,
    save_reconstruction_figure,
    write_tables,
)


def test_tables(tmp_path: Path) -> None:
    rows = [{"model": "Cbigan", "image_AUROC": 0.91234}, {"model": "Egbad", "image_AUROC": 0.5}]
    assert markdown_table(rows).splitlines()[2] == "| Cbigan | 0.912 |"
    md_path, csv_path = write_tables(rows, tmp_path / "out" / "metrics")
    assert md_path.read_text().startswith("| model | image_AUROC |")
    assert list(csv.DictReader(csv_path.open()))[1] == {"model": "Egbad", "image_AUROC": "0.500"}
    assert sorted(p.name for p in md_path.parent.iterdir()) == ["metrics.csv", "metrics.md"]  # no temp files


def _digest(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


@pytest.mark.parametrize("name", list_models())
def test_reconstruction_figure_shows_each_defect_type_and_leaves_data_alone(
    name: str,
    mvtec_root: Path,
    tmp_path: Path,
    fast_model_args: dict,
) -> None:
    datamodule = TextureAnomalies(root=mvtec_root, category="brick")
    datamodule.setup()
    before = _digest(mvtec_root)
    model = model_class(name)(**fast_model_args)
    figure = save_reconstruction_figure(model, datamodule, tmp_path / "fig.png", num_images=6)
    assert figure == tmp_path / "fig.png"
    # input, reconstruction, anomaly map, ground truth; plus L_R and L_D for models with several score maps
    columns = 6 if hasattr(model.model, "score_maps") else 4
    assert Image.open(figure).size == (200 * columns, 200 * 6)
    assert _digest(mvtec_root) == before


@pytest.mark.parametrize("name", list_models())
def test_reconstruction_error_ratio_is_0_when_exact_and_1_for_a_flat_image(
    name: str,
    mvtec_root: Path,
    fast_model_args: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    datamodule = TextureAnomalies(root=mvtec_root, category="brick")
    datamodule.setup()
    model = model_class(name)(**fast_model_args)
    untrained = reconstruction_error_ratio(model, datamodule)
    assert untrained > 0.5  # random networks do not follow their input
    monkeypatch.setattr(model.model, "reconstruct", lambda images: (None, images.clone()))
    assert reconstruction_error_ratio(model, datamodule) == 0.0
    if getattr(model.model, "tiler", None) is None:  # a flat image per tile would be closer than one per image

        def flat(images: torch.Tensor) -> tuple[None, torch.Tensor]:
            return None, images.mean(dim=(2, 3), keepdim=True).expand_as(images)

        monkeypatch.setattr(model.model, "reconstruct", flat)
        assert reconstruction_error_ratio(model, datamodule) == pytest.approx(1.0)
