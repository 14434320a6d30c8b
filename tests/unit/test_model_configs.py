"""configs/model/<name>.yaml: one per registered model, holding exactly its constructor's defaults.

When a default changes the test fails and prints the file as it should read.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from anomalib_cbigan import list_models, model_class

CONFIGS = Path(__file__).parents[2] / "configs" / "model"
COMPONENTS = ("pre_processor", "post_processor", "evaluator", "visualizer")  # anomalib's, set by the model itself
HEADER = """# {name} with its constructor's defaults ({name}.paper() and configs/recipes/ hold the paper's settings where
# they differ: the model's README). `{name}` resolves without an import (src/anomalib_cbigan/registry.py).
# Usage: anomalib train -c configs/model/{file} --data anomalib.data.MVTecAD --data.category bottle
"""


def expected_config(name: str) -> str:
    """The config file's text: the header, the defaults, and the epochs the defaults are made for."""
    defaults = {
        argument: list(parameter.default) if isinstance(parameter.default, tuple) else parameter.default
        for argument, parameter in inspect.signature(model_class(name)).parameters.items()
        if argument not in COMPONENTS
    }
    config = {"model": {"class_path": name, "init_args": defaults}, "trainer": {"max_epochs": 15}}
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=120)
    return HEADER.format(name=name, file=f"{name.lower()}.yaml") + body


@pytest.mark.parametrize("name", list_models())
def test_each_model_has_a_config_with_its_defaults(name: str) -> None:
    path = CONFIGS / f"{name.lower()}.yaml"
    expected = expected_config(name)
    assert path.is_file() and path.read_text() == expected, f"{path} should read:\n{expected}"


def test_no_config_names_an_unregistered_model() -> None:
    assert sorted(path.stem for path in CONFIGS.glob("*.yaml")) == sorted(name.lower() for name in list_models())
