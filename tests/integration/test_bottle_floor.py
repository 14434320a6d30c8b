"""The image-AUROC floor on real images: a short CPU training of CBiGAN on MVTec AD bottle beats its untrained networks.

Data: ``$MVTEC_ROOT/bottle`` (by default the shared data beside the checkout; 209 training images, 83 test images
with masks; CC BY-NC-SA 4.0), read in place. Recipe: the bottle benchmark's CPU recipe (64 px, batch 16, lr 1e-3, one critic
step per E/G step, alpha 0.1, weight average 0.995 after every batch) for BATCHES batches.

The floor sits half-way between the worst trained and the best untrained seed of ``measure([0, 1, 2])`` (from the
checkout's root: ``python -c "from tests.integration.test_bottle_floor import measure; measure([0, 1, 2])"``, raw
A(x); the figures are in docs/history.md, "Real images: MVTec AD bottle"). Untrained, G outputs an almost constant
grey (Glorot initialisation), so the untrained score is each image's distance from grey, which ranks bottle's
images below chance.

Marked slow (the default suite's longest test before; it keeps the real-image floor on grid,
``test_grid_floor.py``). Run it with ``bash scripts/test.sh --runslow``.
"""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
from anomalib.engine import Engine

from anomalib_cbigan import Cbigan
from anomalib_cbigan.data import InMemoryDataModule, LocalMVTecAD
from anomalib_cbigan.metrics import raw_image_auroc
from anomalib_cbigan_bench.data_roots import data_root

BATCHES = 600
FLOOR = 0.56


def train_and_score(seed: int, work_dir: Path, root: Path, batches: int = BATCHES) -> tuple[float, float]:
    """(untrained, trained) raw image AUROC of CBiGAN on bottle after ``batches`` batches of the CPU recipe."""
    lightning.seed_everything(seed, verbose=False)
    bottle = LocalMVTecAD(root=root, category="bottle", train_batch_size=16, eval_batch_size=32, num_workers=0)
    bottle.prepare_data()
    bottle.setup()
    model = Cbigan(input_size=(64, 64), tile_images=False, patches_per_epoch=0, lr=1e-3, critic_steps=1, alpha=0.1, batch_size=16,
                   weight_average_decay=0.995,
                   weight_average_every=1, visualizer=False)  # fmt: skip
    untrained = raw_image_auroc(model, bottle.test_dataloader())
    engine = Engine(max_steps=-1, max_epochs=1, default_root_dir=work_dir, logger=False, enable_progress_bar=False,
                    limit_val_batches=0)  # fmt: skip
    engine.fit(model, datamodule=InMemoryDataModule(bottle, batches_per_epoch=batches))
    return untrained, raw_image_auroc(model, bottle.test_dataloader())


def measure(seeds: list[int]) -> None:
    """Print untrained and trained AUROC for each seed (the figures the floor comes from)."""
    import tempfile

    for seed in seeds:
        with tempfile.TemporaryDirectory() as work_dir:
            untrained, trained = train_and_score(seed, Path(work_dir), data_root("MVTEC_ROOT"))
        print(f"seed {seed}: untrained {untrained:.3f}, trained {trained:.3f}", flush=True)


@pytest.mark.slow
def test_short_training_beats_the_untrained_networks_on_bottle(tmp_path: Path, real_mvtec_root: Path) -> None:
    untrained, trained = train_and_score(0, tmp_path, real_mvtec_root)
    print(f"bottle image AUROC (raw A(x)): untrained {untrained:.3f}, trained {trained:.3f}")
    assert untrained < FLOOR, "the floor no longer separates a trained model from an untrained one"
    assert trained >= FLOOR
