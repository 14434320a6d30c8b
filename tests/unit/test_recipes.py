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
        assert args["weight_average_decay"] == 0.999  # the official code evaluates the average of E and G
    assert objects["model"]["init_args"]["alpha"] == 1e-4
    assert objects["model"]["init_args"]["input_size"] == [128, 128]
    assert "train_augmentations" not in _mvtec_args(objects)
    rotated = _mvtec_args(_load("cbigan_mvtec_objects_rotated.yaml"))["train_augmentations"]
    assert rotated == {"class_path": "torchvision.transforms.v2.RandomRotation", "init_args": {"degrees": [-45, 45]}}
    assert textures["model"]["init_args"]["alpha"] in (1e-4, 1e-5)
    assert textures["model"]["init_args"]["tile_images"] is True
    assert textures["data"]["init_args"]["image_size"] == [512, 512]  # decoded once at the paper's 512x512
    steps = [t["class_path"].rsplit(".", 1)[1] for t in _mvtec_args(textures)["train_augmentations"]
             ["init_args"]["transforms"]]  # fmt: skip
    assert steps == ["RandomCrop", "RandomRotation", "CenterCrop"]
    assert _load("fcbigan_mvtec_textures.yaml")["model"]["init_args"]["patch_size"] == 48


def _mvtec_args(recipe: dict) -> dict:
    """The MVTecAD arguments inside the recipe's InMemoryDataModule."""
    assert recipe["data"]["class_path"] == "anomalib_cbigan.data.InMemoryDataModule"
    return recipe["data"]["init_args"]["datamodule"]["init_args"]


@pytest.mark.parametrize("recipe", sorted(path.name for path in RECIPES.glob("*.yaml")))
def test_every_recipe_trains_from_memory(recipe: str) -> None:
    config = _load(recipe)
    assert _mvtec_args(config)["root"] == "./datasets/MVTecAD"
    if config["trainer"].get("max_steps"):  # step-based: epochs of batches_per_epoch, not ~180,000 tiny ones
        assert config["data"]["init_args"]["batches_per_epoch"] == 1000


@pytest.mark.parametrize("recipe", sorted(path.name for path in RECIPES.glob("*.yaml") if "gan_" in path.name))
def test_recipes_hold_the_paper_settings_whatever_the_defaults(recipe: str) -> None:
    # Every setting of Model.paper() is written out, so a change of the constructor's defaults leaves the recipes
    # the paper's; the texture recipes differ in the protocol only (64-px tiles, alpha 1e-5).
    from anomalib_cbigan import model_class

    model = _load(recipe)["model"]
    cls = model_class(model["class_path"])
    expected = {key: list(value) if isinstance(value, tuple) else value for key, value in cls.paper_settings.items()
                if key != "alpha" or model["class_path"] != "Egbad"}  # fmt: skip
    if "textures" in recipe and model["class_path"] != "Fcbigan":
        expected |= {"input_size": [64, 64], "tile_images": True, "alpha": 1e-5}
        if model["class_path"] == "Egbad":
            expected.pop("alpha")
    assert model["init_args"] == expected
