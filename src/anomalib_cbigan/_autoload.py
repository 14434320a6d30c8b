"""Make anomalib see this package's models without the user importing anything.

anomalib 2.7 has no plugin entry points: its CLI and ``get_model`` only know the
``AnomalibModule`` subclasses that are already imported, and ``get_model`` looks a
``class_path`` up as an attribute of ``anomalib.models``. This module is imported at
interpreter start-up by ``anomalib_cbigan_autoload.pth`` (installed beside the package).
It uses only the standard library and imports nothing heavy: it installs a post-import
hook that, right after ``anomalib.models`` has finished importing, imports
``anomalib_cbigan.models``; each model class registers itself there
(:func:`anomalib_cbigan.registry.register_model`).

If ``.pth`` files are not processed (``python -S``) call ``import anomalib_cbigan``
yourself: registration happens on import either way.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

_TARGET = "anomalib.models"


def _register_models() -> None:
    try:
        import anomalib_cbigan.models  # noqa: F401  # the import registers every model
    except Exception as error:  # noqa: BLE001  # a broken plugin must not break anomalib itself
        warnings.warn(
            f"anomalib_cbigan could not register its models with anomalib ({error!r}); "
            "`--model Cbigan` will not resolve. Import anomalib_cbigan directly to see the full error.",
            RuntimeWarning,
            stacklevel=2,
        )


class _RegisterAfterExec(importlib.abc.Loader):
    """Wraps the real loader of ``anomalib.models``; registers our models once it has run."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _register_models()


class _AnomalibModelsHook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # one shot, and keeps the search below from finding us again
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def install() -> None:
    """Install the hook (or register at once if ``anomalib.models`` is already imported)."""
    if _TARGET in sys.modules:
        _register_models()
    elif not any(isinstance(finder, _AnomalibModelsHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AnomalibModelsHook())


install()
