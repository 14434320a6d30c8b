"""The image-AUROC floor: a short CPU training of CBiGAN reaches what its untrained networks cannot.

Protocol: the paper's for textures (official ``score.py``): train on random 64x64 crops of the
embedded ``brick`` images at their native resolution, score each 192x192 test image as 3x3 tiles
and take the largest tile score ``A(x)`` (``tile_images=True``). Recipe: alpha 0.5, lr 1e-3, one
critic step per E/G step, 60 epochs of batches of 8.

The floor sits below the worst trained seed and above the best untrained one of
``python benchmarks/run_sweep.py --config benchmarks/sweeps/embedded_tiles.yaml`` (seeds 0-2, ``image_AUROC_raw``;
the table in docs/benchmarks.md, "Embedded textures"). Untrained, G outputs an almost constant grey, so the
untrained score is each tile's distance from grey, nearly the same for every seed and not far from chance on
these holes and stains only because of the official Glorot-uniform initialisation (docs/cbigan.md): the floor is
meaningful next to the untrained networks, which is why it is measured with them.
"""

from __future__ import annotations

from pathlib import Path

import lightning
from anomalib.engine import Engine
from torchvision.transforms import v2

from anomalib_cbigan import Cbigan
from anomalib_cbigan.data import TextureAnomalies, build_texture_dataset
from anomalib_cbigan.metrics import raw_image_auroc

FLOOR = 0.71
TILE = 64
EPOCHS = 60


def test_short_training_beats_the_untrained_networks_on_embedded_brick(tmp_path: Path) -> None:
    root = build_texture_dataset(tmp_path / "data", ["brick"])  # the embedded data at its full size
    lightning.seed_everything(0, verbose=False)
    datamodule = TextureAnomalies(
        root=root, category="brick", train_batch_size=8, train_augmentations=v2.RandomCrop((TILE, TILE))
    )
    datamodule.prepare_data()
    datamodule.setup()
    model = Cbigan(input_size=(TILE, TILE), tile_images=True, patches_per_epoch=0, alpha=0.5, lr=1e-3, critic_steps=1,
                   weight_average_decay=0.0, visualizer=False)  # fmt: skip
    untrained = raw_image_auroc(model, datamodule.test_dataloader())
    engine = Engine(max_epochs=EPOCHS, default_root_dir=tmp_path / "run", logger=False, enable_progress_bar=False,
                    check_val_every_n_epoch=EPOCHS)  # fmt: skip
    engine.fit(model, datamodule=datamodule)
    trained = raw_image_auroc(model, datamodule.test_dataloader())
    print(f"image AUROC (raw A(x), max over tiles): untrained {untrained:.3f}, trained {trained:.3f}")
    assert untrained < FLOOR, "the floor no longer separates a trained model from an untrained one"
    assert trained >= FLOOR
