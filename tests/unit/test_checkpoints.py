"""Checkpoints: one from another model, or from other hyper-parameters, is named as such before any weight loads."""

from __future__ import annotations

from collections.abc import Callable
from itertools import permutations
from pathlib import Path

import lightning
import pytest
import torch
from anomalib.models import AnomalibModule

from anomalib_cbigan import list_models, model_class
from anomalib_cbigan.models.gan_module import MODEL_CLASS, RNG_STATES, CheckpointMismatchError


def write_checkpoint(model: AnomalibModule, path: Path) -> Path:
    """A checkpoint as Lightning writes one (state, hyper-parameters, the module's own additions)."""
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "epoch": 0,
        "global_step": 0,
    }
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    return {
        name: write_checkpoint(model_class(name)(input_size=(64, 64)), folder / f"{name}.ckpt")
        for name in list_models()
    }


@pytest.mark.parametrize("name", list_models())
def test_a_models_own_checkpoint_loads(name: str, checkpoints: dict[str, Path]) -> None:
    restored = model_class(name).load_from_checkpoint(checkpoints[name])
    assert type(restored).__name__ == name


@pytest.mark.parametrize(("writer", "reader"), list(permutations(list_models(), 2)))
def test_another_models_checkpoint_names_its_model(writer: str, reader: str, checkpoints: dict[str, Path]) -> None:
    with pytest.raises(CheckpointMismatchError, match=rf"written by {writer}, not {reader}: load it with {writer}\."):
        model_class(reader).load_from_checkpoint(checkpoints[writer])


def test_a_foreign_checkpoint_without_our_mark_is_named(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    # As anomalib's GANomaly writes: other weight names, no class mark.
    checkpoint = torch.load(checkpoints["Fcbigan"], weights_only=False)
    del checkpoint[MODEL_CLASS]
    torch.save(checkpoint, tmp_path / "foreign.ckpt")
    with pytest.raises(CheckpointMismatchError, match=r"not a Cbigan checkpoint \(another model's\?\): \d+ of Cbigan"):
        model_class("Cbigan").load_from_checkpoint(tmp_path / "foreign.ckpt")


def test_other_hyper_parameters_are_named(checkpoints: dict[str, Path]) -> None:
    # As `anomalib test --model Cbigan --model.input_size [128,128] --ckpt_path <64-px checkpoint>` would.
    checkpoint = torch.load(checkpoints["Cbigan"], weights_only=False)
    model = model_class("Cbigan")(input_size=(128, 128))
    with pytest.raises(CheckpointMismatchError, match=r"input_size: checkpoint .*64.*, this model .*128"):
        model.on_load_checkpoint(checkpoint)


def test_loading_a_model_to_use_it_does_not_rewind_the_global_random_state(checkpoints: dict[str, Path]) -> None:
    saved = torch.load(checkpoints["Cbigan"], weights_only=False)[RNG_STATES]["torch"]
    model_class("Cbigan").load_from_checkpoint(checkpoints["Cbigan"])
    assert not torch.equal(torch.get_rng_state(), saved)  # only a resumed fit restores it


def test_tiles_larger_than_the_image_are_a_clear_error(fast_args_by_name: Callable[[str], dict]) -> None:
    model = model_class("Cbigan")(**{**fast_args_by_name("Cbigan"), "tile_images": True}).eval()
    with pytest.raises(ValueError, match=r"Tile size \(64, 64\) exceeds image size \(32, 32\)"):
        model.model(torch.rand(1, 3, 32, 32))
