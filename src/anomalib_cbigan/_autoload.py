"""Make anomalib see this package's models without the user importing anything.

anomalib 2.7 has no plugin entry points: its CLI and ``get_model`` only know the
``AnomalibModule`` subclasses that are already imported, and ``get_model`` looks a
``class_path`` up as an attribute of ``anomalib.models``. This module is imported at
interpreter start-up by ``anomalib_cbigan_autoload.pth`` (installed beside the package).
It uses only the standard library and imports nothing heavy: it installs a post-import
hook that, right after ``anomalib.models`` (or ``anomalib.data``) has finished importing,
imports ``anomalib_cbigan.models`` (or ``anomalib_cbigan.data``); each model and datamodule
class registers itself there (:mod:`anomalib_cbigan.registry`).

If ``.pth`` files are not processed (``python -S``) call ``import anomalib_cbigan``
yourself: registration happens on import either way.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable
from types import ModuleType


def _register_datamodules() -> None:
    _import_quietly("anomalib_cbigan.data", "`--data TextureAnomalies`")


def _register_models() -> None:
    _import_quietly("anomalib_cbigan.data", "`--data TextureAnomalies`")
    _import_quietly("anomalib_cbigan.models", "`--model Cbigan`")


def _import_quietly(module: str, what: str) -> None:
    """Import ``module`` (its classes register themselves); a broken plugin must not break anomalib."""
    try:
        importlib.import_module(module)
    except Exception as error:  # noqa: BLE001
        warnings.warn(
            f"anomalib_cbigan could not register {module} with anomalib ({error!r}); {what} will not resolve. "
            f"Import {module} directly to see the full error.",
            RuntimeWarning,
            stacklevel=2,
        )


# anomalib.data does not import anomalib.models, so each gets its own hook: a script that only uses
# `anomalib.data.get_datamodule` (anomalib's benchmark pipeline does) finds our datamodules too.
_TARGETS = {"anomalib.data": _register_datamodules, "anomalib.models": _register_models}


class _RegisterAfterExec(importlib.abc.Loader):
    """Wraps the real loader of an anomalib module; registers our classes once it has run."""

    def __init__(self, loader: importlib.abc.Loader, register: Callable[[], None]) -> None:
        self._loader = loader
        self._register = register

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._register()


class _AnomalibModelsHook(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.pending = {name for name in _TARGETS if name not in sys.modules}

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001
        if fullname not in self.pending:
            return None
        self.pending.discard(fullname)  # one shot per module
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterExec(spec.loader, _TARGETS[fullname])
        return spec


def install() -> None:
    """Install the hook (or register at once for the anomalib modules already imported)."""
    for name, register in _TARGETS.items():
        if name in sys.modules:
            register()
    hook = _AnomalibModelsHook()
    if hook.pending and not any(isinstance(finder, _AnomalibModelsHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, hook)


install()
