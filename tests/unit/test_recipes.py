"""The MVTec AD recipes: the paper's settings, and EGBAD's recipes are CBiGAN's with alpha = 0."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).parents[2] / "configs" / "recipes"


def _load(name: str) -> dict:
    return yaml.safe_load((RECIPES / name).read_text())


@pytest.mark.parametrize("family", ["objects", "objects_rotated", "textures"])
def test_egbad_recipes_are_cbigan_recipes_without_alpha(family: str) -> None:
    cbigan, egbad = _load(f"cbigan_mvtec_{family}.yaml"), _load(f"egbad_mvtec_{family}.yaml")
    assert cbigan["model"]["class_path"] == "Cbigan" and egbad["model"]["class_path"] == "Egbad"
    cbigan["model"]["init_args"].pop("alpha")
    cbigan["model"]["class_path"] = "Egbad"
    assert cbigan == egbad


def test_paper_settings() -> None:
    objects, textures = _load("cbigan_mvtec_objects.yaml"), _load("cbigan_mvtec_textures.yaml")
    for recipe in (objects, textures):
        args = recipe["model"]["init_args"]
        assert (args["latent_dim"], args["lambda_"], args["lr"]) == (64, 0.1, 1e-4)
        assert recipe["trainer"]["max_steps"] == 1_200_000
    assert objects["model"]["init_args"]["alpha"] == 1e-4
    assert objects["model"]["init_args"]["input_size"] == [128, 128]
    assert "train_augmentations" not in objects["data"]["init_args"]
    rotated = _load("cbigan_mvtec_objects_rotated.yaml")["data"]["init_args"]["train_augmentations"]
    assert rotated == {"class_path": "torchvision.transforms.v2.RandomRotation", "init_args": {"degrees": [-45, 45]}}
    assert textures["model"]["init_args"]["alpha"] in (1e-4, 1e-5)
    assert textures["model"]["init_args"]["tile_images"] is True
    steps = [t["class_path"].rsplit(".", 1)[1] for t in textures["data"]["init_args"]["train_augmentations"]
             ["init_args"]["transforms"]]  # fmt: skip
    assert steps == ["Resize", "RandomCrop", "RandomRotation", "CenterCrop"]
    assert _load("fcbigan_mvtec_textures.yaml")["model"]["init_args"]["patch_size"] == 48
