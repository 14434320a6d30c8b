"""A write that fails half-way leaves the previous file (ours and Lightning's checkpoints alike)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fsspec.implementations.local import LocalFileOpener
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from anomalib_cbigan.atomic_files import atomic_path, atomic_write_text
from anomalib_cbigan.reports import write_tables


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.md"
    atomic_write_text(target, "old\n")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise OSError("disk full")
    assert target.read_text() == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["results.md"]


def test_tables_are_replaced_whole(tmp_path: Path) -> None:
    write_tables([{"model": "Cbigan", "image_AUROC": 0.5}], tmp_path / "metrics")
    write_tables([{"model": "Egbad", "image_AUROC": 0.6}], tmp_path / "metrics")
    assert "Egbad" in (tmp_path / "metrics.csv").read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.csv", "metrics.md"]


def test_lightning_checkpoints_are_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What anomalib's Engine uses to write checkpoints: a crash mid-write keeps the previous checkpoint."""
    path = tmp_path / "model.ckpt"
    checkpoint_io = TorchCheckpointIO()
    checkpoint_io.save_checkpoint({"weights": torch.zeros(1000)}, path)
    write = LocalFileOpener.write

    def half_then_crash(self: LocalFileOpener, data: bytes) -> int:
        write(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(LocalFileOpener, "write", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint_io.save_checkpoint({"weights": torch.ones(1000)}, path)
    monkeypatch.undo()
    assert torch.equal(checkpoint_io.load_checkpoint(path)["weights"], torch.zeros(1000))
