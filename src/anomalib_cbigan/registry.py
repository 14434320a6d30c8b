"""One list of this package's models (after timm's registry): names, where they live, what they implement.

:data:`MODELS` is the only place a model is named. Everything else comes from it: the short names anomalib
resolves, :func:`list_models`, the package's top-level names (``from anomalib_cbigan import Cbigan``), the
model table of the README (generated) and the tests parametrised over every model. A new model is a folder
under ``models/`` and one entry here.

Importing :mod:`anomalib_cbigan.models` registers every model with anomalib (:func:`register_models`), so all of
anomalib's ways to name a model work:

* ``anomalib train --model Cbigan`` (jsonargparse resolves subclasses of ``AnomalibModule`` that are imported;
  the import happens through ``_autoload``);
* ``anomalib.models.get_model("cbigan")`` (scans *direct* subclasses of ``AnomalibModule``: each model lists
  ``AnomalibModule`` among its bases);
* ``get_model({"class_path": "Cbigan"})`` and anomalib's benchmark pipeline (look the name up as an attribute
  of ``anomalib.models``: we set that attribute);
* ``get_model({"class_path": "anomalib_cbigan.Cbigan"})`` (anomalib only imports dotted paths from an allow-list
  of modules: we add this package to it).

Datamodules are decorated with :func:`register_datamodule` for the same reason: ``anomalib.data.get_datamodule``
(and so anomalib's benchmark pipeline) looks the last part of a ``class_path`` up as an attribute of
``anomalib.data``.

This module imports nothing heavy at import time: the start-up hook and ``import anomalib_cbigan`` read it
without importing torch.
"""

from __future__ import annotations

import inspect
import re
from importlib import import_module
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from anomalib.models.components import AnomalibModule

DataModuleT = TypeVar("DataModuleT", bound=type)


class ModelEntry(NamedTuple):
    """A registered model: its class name (the short name anomalib resolves), its folder and what it implements."""

    name: str
    folder: str  # under anomalib_cbigan/models/, holding the class in its lightning_model.py
    paper: str

    @property
    def module(self) -> str:
        """The module that defines the class."""
        return f"anomalib_cbigan.models.{self.folder}.lightning_model"


MODELS = (
    ModelEntry("Cbigan", "cbigan", "Carrara et al., *Combining GANs and AutoEncoders for Efficient Anomaly Detection*, ICPR 2020"),
    ModelEntry("Egbad", "egbad", "Zenati et al., *Efficient GAN-Based Anomaly Detection*, 2018 (CBiGAN with α = 0)"),
    ModelEntry("Fcbigan", "fcbigan", "Peccia, *GANs and real-time anomaly detection in texture images*, PoliMi 2021"),
    ModelEntry("Skipganomaly", "skipganomaly", "Akçay et al., *Skip-GANomaly: Skip Connected and Adversarially Trained "
               "Encoder-Decoder Anomaly Detection*, IJCNN 2019"),  # fmt: skip
    ModelEntry("Sagan", "sagan", "Liu et al., *SAGAN: Skip-Attention GAN for Anomaly Detection*, ICIP 2021 "
               "(Skip-GANomaly with CBAM and separable convolutions)"),  # fmt: skip
)
_PACKAGE_MODULES = ("anomalib_cbigan", "anomalib_cbigan.models")


def _normalise(name: str) -> str:
    """``"Cbigan"``, ``"cbigan"`` and ``"CBiGAN"`` name the same model (snake_case too)."""
    return re.sub(r"[_\-\s]", "", name).lower()


def register_models() -> dict[str, type[AnomalibModule]]:
    """Import every model of :data:`MODELS` and expose it to anomalib; ``{name: class}``.

    Example:
        >>> sorted(register_models())[:2]
        ['Cbigan', 'Egbad']
    """
    # Not `import anomalib.models`: during start-up registration that module is still being
    # bound to its parent package; sys.modules already holds it.
    anomalib_models = import_module("anomalib.models")
    anomalib_models.ALLOWED_MODULES.update(_PACKAGE_MODULES)
    classes = {}
    for entry in MODELS:
        cls = getattr(import_module(entry.module), entry.name)
        setattr(anomalib_models, entry.name, cls)
        if entry.name not in anomalib_models.__all__:
            anomalib_models.__all__.append(entry.name)
        classes[entry.name] = cls
    return classes


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
    return sorted(entry.name for entry in MODELS)


def model_class(name: str) -> type[AnomalibModule]:
    """Look a registered model class up by name, case- and underscore-insensitively.

    Raises:
        KeyError: naming the unknown model and listing the registered ones.
    """
    for entry in MODELS:
        if _normalise(entry.name) == _normalise(name):
            return getattr(import_module("anomalib_cbigan.models"), entry.name)
    msg = f"Unknown model {name!r}. Registered anomalib_cbigan models: {', '.join(list_models())}."
    raise KeyError(msg)


def takes_argument(cls: type[AnomalibModule], argument: str) -> bool:
    """Whether the model's constructor has ``argument`` (``Egbad`` has no ``alpha``: it is 0).

    Example:
        >>> from anomalib_cbigan import model_class
        >>> takes_argument(model_class("egbad"), "alpha")
        False
    """
    return argument in inspect.signature(cls).parameters
