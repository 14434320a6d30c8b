"""Fit one registered model for a few steps with DDP on 2 CPU processes (gloo); each rank writes its parameters.

Run by tests/integration/test_reliability.py as a script, because Lightning's ``ddp`` strategy starts the
other rank by running the same command again.

Usage: python ddp_fit.py MODEL MVTEC_ROOT OUTPUT_DIR
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import torch
from anomalib.engine import Engine
from lightning import seed_everything

from anomalib_cbigan.data import LocalMVTecAD
from anomalib_cbigan.registry import model_class, takes_argument

warnings.filterwarnings("ignore")


def _l1_norm(module: torch.nn.Module) -> float:
    # Not parameters_to_vector: it views each parameter as 1-D, which channels_last convolution weights refuse.
    return sum(float(p.detach().abs().sum()) for p in module.parameters())


def fit(name: str, root: Path, output: Path) -> None:
    """Fit ``name`` for 4 steps on this rank; write what the test compares across ranks."""
    seed_everything(0, verbose=False)
    cls = model_class(name)
    small = {"patches_per_epoch": 64, "patch_batch_size": 16, "width": 16}  # for the models that take them
    optional = {key: value for key, value in small.items() if takes_argument(cls, key)}
    if takes_argument(cls, "tile_images"):  # CBiGAN's whole-image path (tests/conftest.py WHOLE_IMAGES)
        optional |= {"tile_images": False, "patches_per_epoch": 0}
    model = cls(input_size=(64, 64), critic_steps=1, visualizer=False, **optional)
    datamodule = LocalMVTecAD(root=root, category="brick", train_batch_size=2, eval_batch_size=4, num_workers=0)
    initial_norm = _l1_norm(model.model)
    engine = Engine(
        accelerator="cpu",
        devices=2,
        strategy="ddp_find_unused_parameters_true",  # the critic step leaves E and G unused, and vice versa
        max_steps=4,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        default_root_dir=output / name,
    )
    engine.fit(model, datamodule=datamodule)
    rank = engine.trainer.global_rank
    # Learnable parameters only: batch-norm running statistics are each rank's own (rank 0's are checkpointed;
    # on GPUs `sync_batchnorm=True` shares them, on CPU SyncBatchNorm does not exist).
    parameters = {key: value.double().sum().item() for key, value in model.model.named_parameters()}
    norm = _l1_norm(model.model)
    (output / f"{name}_rank{rank}.json").write_text(
        json.dumps({
            "world_size": engine.trainer.world_size,
            "global_step": engine.trainer.global_step,
            "batches_seen": int(model.batches_seen),
            "parameters": parameters,
            "norm": norm,
            "initial_norm": initial_norm,
        })
    )  # fmt: skip


def main() -> None:
    """Fit the model named on the command line."""
    fit(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))


if __name__ == "__main__":
    main()
