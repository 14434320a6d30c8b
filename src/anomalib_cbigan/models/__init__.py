"""The models of this package (:data:`anomalib_cbigan.registry.MODELS`); importing this module registers them with
anomalib and binds them here (``from anomalib_cbigan.models import Cbigan``)."""

from anomalib_cbigan.registry import register_models

_MODELS = register_models()
globals().update(_MODELS)
__all__ = list(_MODELS)  # noqa: PLE0605
