"""CBiGAN, EGBAD, FCBiGAN, Skip-GANomaly and SAGAN anomaly detectors as anomalib model plugins.

Example:
    >>> from anomalib_cbigan import Cbigan, Egbad, Fcbigan, Sagan, Skipganomaly, list_models
    >>> list_models()
    ['Cbigan', 'Egbad', 'Fcbigan', 'Sagan', 'Skipganomaly']

The public names are resolved lazily (PEP 562) so that the start-up hook in
:mod:`anomalib_cbigan._autoload` can import this package without importing torch. The model names are those of
:data:`anomalib_cbigan.registry.MODELS`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from anomalib_cbigan.registry import MODELS

__version__ = "0.1.0"

_LAZY = {
    **{entry.name: "anomalib_cbigan.models" for entry in MODELS},
    "list_models": "anomalib_cbigan.registry",
    "model_class": "anomalib_cbigan.registry",
    "TextureAnomalies": "anomalib_cbigan.data",
    "LocalMVTecAD": "anomalib_cbigan.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    msg = f"module 'anomalib_cbigan' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
