"""One way to name, list and look up this package's models (after timm's registry).

Every model class is decorated with :func:`register_model`. Registering also makes the
class visible to anomalib, so all of anomalib's ways to name a model work:

* ``anomalib train --model Cbigan`` (jsonargparse resolves subclasses of
  ``AnomalibModule`` that are imported; the import happens through ``_autoload``);
* ``anomalib.models.get_model("cbigan")`` (scans *direct* subclasses of
  ``AnomalibModule``: each model lists ``AnomalibModule`` among its bases);
* ``get_model({"class_path": "Cbigan"})`` and anomalib's benchmark pipeline (look the
  name up as an attribute of ``anomalib.models``: we set that attribute);
* ``get_model({"class_path": "anomalib_cbigan.Cbigan"})`` (anomalib only imports dotted
  paths from an allow-list of modules: we add this package to it).

Datamodules are decorated with :func:`register_datamodule` for the same reason:
``anomalib.data.get_datamodule`` (and so anomalib's benchmark pipeline) looks the last part of
a ``class_path`` up as an attribute of ``anomalib.data``.
"""

from __future__ import annotations

import inspect
import re
from importlib import import_module
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from anomalib.models.components import AnomalibModule

ModelT = TypeVar("ModelT", bound="type[AnomalibModule]")
DataModuleT = TypeVar("DataModuleT", bound=type)

_MODELS: dict[str, type[AnomalibModule]] = {}
_PACKAGE_MODULES = ("anomalib_cbigan", "anomalib_cbigan.models")


def _normalise(name: str) -> str:
    """``"Cbigan"``, ``"cbigan"`` and ``"CBiGAN"`` name the same model (snake_case too)."""
    return re.sub(r"[_\-\s]", "", name).lower()


def register_model(cls: ModelT) -> ModelT:
    """Class decorator: add ``cls`` to the registry and expose it to anomalib.

    Example:
        >>> from anomalib_cbigan.registry import list_models
        >>> "Cbigan" in list_models()
        True
    """
    # Not `import anomalib.models`: during start-up registration that module is still being
    # bound to its parent package; sys.modules already holds it.
    anomalib_models = import_module("anomalib.models")
    _MODELS[cls.__name__] = cls
    setattr(anomalib_models, cls.__name__, cls)
    if cls.__name__ not in anomalib_models.__all__:
        anomalib_models.__all__.append(cls.__name__)
    anomalib_models.ALLOWED_MODULES.update(_PACKAGE_MODULES)
    return cls


def register_datamodule(cls: DataModuleT) -> DataModuleT:
    """Class decorator: make ``get_datamodule({"class_path": cls.__name__})`` find ``cls``.

    Example:
        >>> from anomalib.data import get_datamodule
        >>> type(get_datamodule({"class_path": "TextureAnomalies", "init_args": {"category": "grass"}})).__name__
        'TextureAnomalies'
    """
    anomalib_data = import_module("anomalib.data")
    setattr(anomalib_data, cls.__name__, cls)
    if cls.__name__ not in anomalib_data.__all__:
        anomalib_data.__all__.append(cls.__name__)
    return cls


def list_models() -> list[str]:
    """Names of all registered models, sorted.

    Example:
        >>> from anomalib_cbigan import list_models
        >>> list_models()[:2]
        ['Cbigan', 'Egbad']
    """
    _ensure_imported()
    return sorted(_MODELS)


def model_class(name: str) -> type[AnomalibModule]:
    """Look a registered model class up by name, case- and underscore-insensitively.

    Raises:
        KeyError: naming the unknown model and listing the registered ones.
    """
    _ensure_imported()
    for registered, cls in _MODELS.items():
        if _normalise(registered) == _normalise(name):
            return cls
    msg = f"Unknown model {name!r}. Registered anomalib_cbigan models: {', '.join(sorted(_MODELS))}."
    raise KeyError(msg)


def takes_argument(cls: type[AnomalibModule], argument: str) -> bool:
    """Whether the model's constructor has ``argument`` (``Egbad`` has no ``alpha``: it is 0).

    Example:
        >>> from anomalib_cbigan import model_class
        >>> takes_argument(model_class("egbad"), "alpha")
        False
    """
    return argument in inspect.signature(cls).parameters


def _ensure_imported() -> None:
    import anomalib_cbigan.models  # noqa: F401  # importing registers the models
