"""Registration: every way anomalib names a model resolves ours."""

from __future__ import annotations

import subprocess
import sys

import pytest
from anomalib.models import get_model

from anomalib_cbigan import list_models, model_class

MODELS = list_models()


def test_registry_lists_the_models() -> None:
    assert {"Cbigan", "Egbad"} <= set(MODELS)
    assert model_class("cbigan").__name__ == "Cbigan"
    assert model_class("EGBAD").__name__ == "Egbad"
    with pytest.raises(KeyError, match="Registered anomalib_cbigan models: Cbigan, Egbad"):
        model_class("nope")


@pytest.mark.parametrize("name", MODELS)
def test_get_model_resolves_every_spelling(name: str) -> None:
    small = {"input_size": (64, 64)}
    assert type(get_model(name.lower(), **small)).__name__ == name
    assert type(get_model({"class_path": name, "init_args": small})).__name__ == name
    assert type(get_model({"class_path": f"anomalib_cbigan.{name}", "init_args": small})).__name__ == name


def test_fresh_interpreter_resolves_without_importing_the_package() -> None:
    # The .pth start-up hook registers the models when anomalib.models is imported.
    code = (
        "import sys; from anomalib.models import get_model, list_models; "
        "m = get_model('cbigan', input_size=(64, 64)); "
        "assert 'cbigan' in list_models() and 'egbad' in list_models(); "
        "print(type(m).__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("anomalib_cbigan.models.cbigan.lightning_model")


def test_start_up_hook_is_light() -> None:
    # Importing the hook must not import torch or anomalib (it runs in every interpreter).
    code = "import anomalib_cbigan._autoload, sys; print('torch' in sys.modules, 'anomalib' in sys.modules)"
    command = [sys.executable, "-S", "-c", f"import site; site.main(); {code}"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]
