"""Shared fixtures: small generated data and fast model settings."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("anomalib").setLevel(logging.WARNING)

# Small and fast: 64 px inputs, the embedded generator with few images.
FAST_MODEL_ARGS = {"input_size": (64, 64), "critic_steps": 1, "visualizer": False}
# Settings only some models take, applied to those that do (FCBiGAN's thousands of patches an epoch,
# Skip-GANomaly's and SAGAN's 64 channels).
FAST_OPTIONAL_ARGS = {"patches_per_epoch": 256, "width": 16}
# CBiGAN's and EGBAD's whole-image path (their defaults draw 2,000 patches an epoch and score tiles): what the
# tests of the training step, the engine and export exercise, batch for batch.
WHOLE_IMAGES = {"tile_images": False, "patches_per_epoch": 0}


def fast_args_for(name: str) -> dict:
    """FAST_MODEL_ARGS plus the optional settings model ``name`` takes."""
    from anomalib_cbigan.registry import model_class, takes_argument

    cls = model_class(name)
    optional = {key: value for key, value in FAST_OPTIONAL_ARGS.items() if takes_argument(cls, key)}
    if takes_argument(cls, "tile_images"):
        optional |= WHOLE_IMAGES
    return {**FAST_MODEL_ARGS, **optional}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def shared_data(name: str) -> Path:
    """A data root of the benchmarks (``MVTEC_ROOT``, ``PAPERS_DIR``: :mod:`anomalib_cbigan_bench.data_roots`), its
    default taken from the checkout's root as the benchmarks take it; the test skips where it is not there."""
    from anomalib_cbigan_bench.data_roots import data_root

    path = data_root(name)
    path = path if path.is_absolute() else REPO / path
    if not path.is_dir():
        pytest.skip(f"needs {name} ({path}): the shared data beside the checkout, or the environment variable")
    return path


@pytest.fixture(scope="session")
def real_mvtec_root() -> Path:
    """The real MVTec AD categories (bottle, grid) of the shared data."""
    return shared_data("MVTEC_ROOT")


@pytest.fixture(scope="session")
def papers_dir() -> Path:
    """The method texts of the shared data."""
    return shared_data("PAPERS_DIR")


@pytest.fixture(scope="session")
def mvtec_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MVTec-layout tree (category 'brick') written by the embedded generator."""
    from anomalib_cbigan.data import build_texture_dataset

    return build_texture_dataset(
        tmp_path_factory.mktemp("mvtec"),
        ["brick"],
        num_train=8,
        num_test_good=4,
        num_test_per_defect=2,
    )


@pytest.fixture(scope="session")
def whole_images() -> dict:
    """:data:`WHOLE_IMAGES`, for tests that build CBiGAN themselves."""
    return dict(WHOLE_IMAGES)


@pytest.fixture
def fast_model_args(name: str) -> dict:
    """Fast settings for the test's parametrised model ``name``."""
    return fast_args_for(name)


@pytest.fixture
def fast_args_by_name() -> Callable[[str], dict]:
    """``fast_args_for`` as a fixture, for tests that need several models' settings (in YAML-friendly lists)."""

    def args_for(name: str) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in fast_args_for(name).items()}

    return args_for


def resized_for_deployment(model: object, folder: Path, target: Path) -> Path:
    """``folder``'s PNGs brought to ``model``'s input size (antialiased, as its pre-processor does) in ``target``.

    The pre-processor's resize antialiases, the exported graph's cannot (anomalib's ``export_transform``), so the
    two agree on images already at the input size: that is how exported models are fed (README, Deploying).
    Models whose pre-processor does not resize get the images as they are.
    """
    from anomalib.data.transforms.utils import extract_transforms_by_type
    from PIL import Image
    from torchvision.transforms.v2 import Resize

    from anomalib_cbigan.data.in_memory import decode_image

    resizes = extract_transforms_by_type(model.pre_processor.transform, Resize)
    if not resizes:
        return folder
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.glob("*.png")):
        small = decode_image(path, tuple(resizes[0].size))  # RGB, antialiased bilinear, uint8: as the pipeline
        Image.fromarray(small.permute(1, 2, 0).numpy()).save(target / path.name)
    return target


@pytest.fixture
def at_input_size(tmp_path: Path) -> Callable[[object, Path], Path]:
    """:func:`resized_for_deployment` into the test's temporary folder."""
    return lambda model, folder: resized_for_deployment(model, folder, tmp_path / "at_input_size")
