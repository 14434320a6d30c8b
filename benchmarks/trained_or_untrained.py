"""One benchmark job shared by the quality scripts: a model trained (or left untrained) and then tested."""

from __future__ import annotations

import time
from pathlib import Path

from anomalib.engine import Engine


def fit_or_validate_then_test(
    model: object,
    datamodule: object,
    *,
    trained: bool,
    epochs: int,
    work_dir: Path,
    progress: bool = False,
) -> tuple[dict, float, float]:
    """``(test metrics, train seconds, test seconds)``.

    Trained: ``epochs`` epochs with one validation at the end. Untrained: a validation pass only, so
    anomalib's post-processor has normalisation statistics (without them anomalib's AUROC squashes raw
    scores through a sigmoid and reports 0.5): the floor a broken training would sit on.
    """
    engine = Engine(
        max_epochs=epochs,
        default_root_dir=work_dir,
        logger=False,
        enable_progress_bar=progress,
        check_val_every_n_epoch=max(epochs, 1),  # one validation, at the end (see cli.py)
    )
    start = time.perf_counter()
    if trained:
        engine.fit(model, datamodule=datamodule)
    else:
        engine.validate(model, datamodule=datamodule, verbose=False)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics = engine.test(model, datamodule=datamodule, verbose=False)[0]
    return metrics, train_s, time.perf_counter() - start
