"""Where the benchmarks find data that is not in the repository: environment variables, with defaults.

A sweep config names a data root as ``${MVTEC_ROOT}`` (any string value may hold such a name); the harness
expands it when it reads the config. Each name is taken from the environment, else from :data:`DEFAULTS`:
the places the project's checkouts keep them, relative to the folder the benchmarks are run from (the
checkout's root, where every documented command runs).

Example:
    >>> expand("${MVTEC_ROOT}/bottle", environ={"MVTEC_ROOT": "/data/MVTecAD"})
    '/data/MVTecAD/bottle'
    >>> expand("${NOWHERE}", environ={})
    Traceback (most recent call last):
    ...
    KeyError: "unknown data root ${NOWHERE}: set the environment variable NOWHERE or use one of ['MVTEC_ROOT', 'PAPERS_DIR']"
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The shared folder beside the checkout holds the real MVTec AD categories and the method texts.
DEFAULTS = {"MVTEC_ROOT": "../shared/datasets/MVTecAD", "PAPERS_DIR": "../shared/papers"}
PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")


def data_root(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The folder ``name`` (``"MVTEC_ROOT"``, ``"PAPERS_DIR"``) stands for: the environment's, else the default."""
    environ = os.environ if environ is None else environ
    if environ.get(name):
        return Path(environ[name])
    if name not in DEFAULTS:
        msg = f"unknown data root ${{{name}}}: set the environment variable {name} or use one of {sorted(DEFAULTS)}"
        raise KeyError(msg)
    return Path(DEFAULTS[name])


def expand(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` with every ``${NAME}`` replaced by :func:`data_root` of ``NAME``."""
    return PLACEHOLDER.sub(lambda match: str(data_root(match["name"], environ)), value)


def expand_all(config: Any, environ: Mapping[str, str] | None = None) -> Any:  # noqa: ANN401
    """A copy of a parsed YAML document (dicts, lists, scalars) with :func:`expand` applied to every string.

    Example:
        >>> expand_all({"data": [{"root": "${MVTEC_ROOT}"}], "seed": 0}, environ={"MVTEC_ROOT": "/m"})
        {'data': [{'root': '/m'}], 'seed': 0}
    """
    if isinstance(config, str):
        return expand(config, environ)
    if isinstance(config, dict):
        return {key: expand_all(value, environ) for key, value in config.items()}
    if isinstance(config, list):
        return [expand_all(value, environ) for value in config]
    return config
