"""A small seeded fit of one registered model, shared by the reliability tests; as a script it dies mid-epoch.

``python resumable_fit.py MODEL MVTEC_ROOT WORK_DIR KILL_EPOCH KILL_BATCH [in_memory]`` trains like :func:`fit`
and SIGKILLs itself at the start of that batch (no clean-up, as a power cut or an OOM kill), leaving
whatever checkpoints were written before on disk. ``in_memory`` trains from ``InMemoryDataModule``.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

import torch
from anomalib.engine import Engine
from lightning import Callback, LightningModule, Trainer, seed_everything

from anomalib_cbigan.data import InMemoryDataModule, LocalMVTecAD
from anomalib_cbigan.registry import model_class, takes_argument

EPOCHS = 2


def build(
    name: str, root: Path, work_dir: Path, callbacks: list[Callback] | None = None, *, in_memory: bool = False
) -> tuple:
    """``(model, datamodule, engine)``, seeded, deterministic algorithms on."""
    warnings.filterwarnings("ignore")
    seed_everything(42, verbose=False)
    torch.use_deterministic_algorithms(True)
    cls = model_class(name)
    small = {"patches_per_epoch": 64, "patch_batch_size": 16, "width": 16}  # for the models that take them
    optional = {key: value for key, value in small.items() if takes_argument(cls, key)}
    if takes_argument(cls, "tile_images"):  # CBiGAN's whole-image path (tests/conftest.py WHOLE_IMAGES)
        optional |= {"tile_images": False, "patches_per_epoch": 0}
    model = cls(input_size=(64, 64), critic_steps=2, visualizer=False, **optional)
    datamodule = LocalMVTecAD(root=root, category="brick", train_batch_size=2, eval_batch_size=4, num_workers=0)
    if in_memory:  # epochs of 4 batches, as the files' 8 images in batches of 2
        datamodule = InMemoryDataModule(datamodule, batches_per_epoch=4)
    engine = Engine(
        max_epochs=EPOCHS,
        default_root_dir=work_dir,
        logger=False,
        enable_progress_bar=False,
        callbacks=callbacks or [],
    )
    return model, datamodule, engine


class DieAt(Callback):
    """SIGKILL this process at the start of one training batch."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object, batch_idx: int) -> None:
        del pl_module, batch
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    name, root, work_dir, epoch, batch = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), *map(int, sys.argv[4:6])
    in_memory = sys.argv[6:] == ["in_memory"]
    model, datamodule, engine = build(name, root, work_dir, callbacks=[DieAt(epoch, batch)], in_memory=in_memory)
    engine.fit(model, datamodule=datamodule)
