"""A short CPU training must learn something a broken training cannot: reconstructions.

The image-AUROC floor is ``tests/integration/test_quality_floor.py`` (the paper's texture
protocol). This test checks the other half of the paper's point on whole 64-px images: after a
minute of training CBiGAN's reconstruction ``G(E(x))`` of normal test images is much closer than
the untrained networks' and closer than EGBAD's after the same training, because the consistency
term aligns E and G.

Marked slow (the longest test; the default suite has the floor tests). Run it with ``bash scripts/test.sh --runslow``."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch
from anomalib.engine import Engine

from anomalib_cbigan import Cbigan, Egbad
from anomalib_cbigan.data import TextureAnomalies, build_texture_dataset

RATIO_CEILING = 0.7
EPOCHS = 40  # 60 training images, batches of 4: 600 batches, half of them E/G steps


def _normal_reconstruction_error(model: Cbigan, datamodule: TextureAnomalies) -> float:
    torch_model = model.model.eval()
    errors = []
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            images, _ = model.pre_processor.transform(batch.image, batch.gt_mask)
            normal = images[~batch.gt_label.bool()]
            if len(normal):
                errors.append((normal - torch_model.reconstruct(normal)[1]).abs().mean(dim=(1, 2, 3)))
    return float(torch.cat(errors).mean())


def _train(model_cls: type[Cbigan], root: Path, work: Path) -> tuple[float, float]:
    lightning.seed_everything(0, verbose=False)
    datamodule = TextureAnomalies(root=root, category="brick", train_batch_size=4)
    datamodule.prepare_data()
    datamodule.setup()
    model = model_cls(input_size=(64, 64), critic_steps=1, lr=1e-3, visualizer=False)
    before = _normal_reconstruction_error(model, datamodule)
    engine = Engine(max_epochs=EPOCHS, default_root_dir=work, logger=False, enable_progress_bar=False,
                    check_val_every_n_epoch=EPOCHS)  # fmt: skip
    engine.fit(model, datamodule=datamodule)
    return before, _normal_reconstruction_error(model, datamodule)


@pytest.mark.slow
def test_cbigan_learns_to_reconstruct_normal_images_and_egbad_does_not(tmp_path: Path) -> None:
    root = build_texture_dataset(tmp_path / "data", ["brick"])  # the embedded data at its full size
    untrained, cbigan = _train(Cbigan, root, tmp_path / "cbigan")
    _, egbad = _train(Egbad, root, tmp_path / "egbad")
    print(f"normal reconstruction L1: untrained {untrained:.3f}, CBiGAN {cbigan:.3f}, EGBAD {egbad:.3f}")
    assert cbigan < RATIO_CEILING * untrained
    assert cbigan < egbad
