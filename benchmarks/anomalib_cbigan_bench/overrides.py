"""Command-line settings that win over a sweep config's: options passed through to anomalib, and smoke mode.

Options use ``anomalib train``'s dotted names, so what a user knows from one works in the other:

* ``--trainer.K V``: an ``Engine``/Trainer argument for every job (over the sweep's and each model's ``trainer``);
* ``--model.init_args.K V``: a constructor argument of every model that takes ``K`` (an argument no model of the
  sweep takes is an error, not silently dropped);
* ``--data.init_args.K V``: a datamodule argument (``--data.init_args.root /data/MVTecAD``), also over a
  model entry's own ``data`` section;
* ``--in_memory.K V``: an ``InMemoryDataModule`` argument, for the jobs that read from memory;
* ``--seed V``: one seed, or a YAML list (``--seed [0,1]``) for several.

Values are read as YAML (``1e-3``, ``null``, ``[64, 64]``). Overridden jobs are new jobs (a job's name is a
hash of its configuration), so their rows never mix with the config's own.

Example:
    >>> parse_overrides(["--trainer.max_steps", "100", "--model.init_args.lr=1e-3"])
    {'trainer.max_steps': 100, 'model.init_args.lr': 0.001}
"""

from __future__ import annotations

import copy
import importlib
import inspect
from typing import Any, NamedTuple

import yaml

from .generator import SweepConfigError

PREFIXES = ("trainer.", "model.init_args.", "data.init_args.", "in_memory.")

class AtMost(NamedTuple):
    """An override that only lowers a model's value: ``patches_per_epoch`` 0, an option switched off, stays 0."""

    limit: float


# --smoke: every job trains two optimiser steps on batches of 4 and is tested: the whole path in minutes.
SMOKE = {
    "trainer.max_steps": 2,
    "trainer.max_epochs": 1,
    "trainer.max_time": None,
    "trainer.check_val_every_n_epoch": 1,
    "trainer.enable_progress_bar": False,
    "data.init_args.train_batch_size": 4,
    "data.init_args.eval_batch_size": 4,
    "data.init_args.num_workers": 0,
    "model.init_args.batch_size": 4,
    "model.init_args.patches_per_epoch": AtMost(16),  # else one FCBiGAN epoch is 12,000 patches
    "in_memory.batches_per_epoch": 2,
}


class OverrideError(SweepConfigError):
    """A command-line setting the sweep cannot take; the message says which and why."""


def parse_overrides(tokens: list[str]) -> dict[str, Any]:
    """``["--trainer.max_steps", "100", "--seed=0"]`` -> ``{"trainer.max_steps": 100, "seed": 0}``."""
    overrides: dict[str, Any] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("--") or len(token) == 2:
            msg = f"expected an option such as --trainer.max_steps, got {token!r}"
            raise OverrideError(msg)
        key, equals, value = token[2:].partition("=")
        if not equals:
            if index + 1 >= len(tokens):
                msg = f"--{key} needs a value"
                raise OverrideError(msg)
            index += 1
            value = tokens[index]
        if key != "seed" and not _known(key):
            msg = f"--{key}: a sweep takes --seed and --<section>.<argument> for the sections {list(PREFIXES)}"
            raise OverrideError(msg)
        overrides[key] = _value(value)
        index += 1
    return overrides


def apply_overrides(benchmark: dict[str, Any], overrides: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """A copy of a sweep's ``benchmark`` section with ``overrides`` set in every place they apply.

    With ``strict=False`` (smoke mode), a model argument no model takes is skipped instead of refused.
    """
    benchmark = copy.deepcopy(benchmark)
    entries = _model_entries(benchmark)
    for key, value in overrides.items():
        if key == "seed":
            benchmark["seed"] = {"grid": value} if isinstance(value, list) else value
            for entry in entries:  # a model's own seed must not hide the command line's
                entry.pop("seed", None)
            continue
        section, _, argument = key.rpartition(".")
        if section == "trainer":
            for holder in [benchmark, *(entry for entry in entries if "trainer" in entry)]:
                holder.setdefault("trainer", {})[argument] = value
        elif section == "model.init_args":
            takers = [entry for entry in entries if _takes(entry.get("class_path"), argument)]
            if not takers and strict:
                names = [str(entry.get("class_path")) for entry in entries]
                msg = f"--{key}: no model of this sweep takes {argument!r} (models: {names})"
                raise OverrideError(msg)
            for entry in takers:
                arguments = entry.setdefault("init_args", {})
                if not isinstance(value, AtMost):
                    arguments[argument] = value
                elif arguments.get(argument, _default(entry.get("class_path"), argument)) > value.limit:
                    arguments[argument] = value.limit
        elif section == "data.init_args":
            for data in _grid(benchmark["data"]):
                data.setdefault("init_args", {})[argument] = value
            for entry in entries:  # a model's own data section must not hide the command line's value
                if argument in (entry.get("data") or {}).get("init_args", {}):
                    entry["data"]["init_args"][argument] = value
        elif section == "in_memory":
            for holder in [benchmark, *entries]:
                if holder.get("in_memory") is True:
                    holder["in_memory"] = {}
                if isinstance(holder.get("in_memory"), dict):
                    holder["in_memory"][argument] = value
    return benchmark


def _value(text: str) -> Any:
    """YAML, except that ``1e-3`` is a number (PyYAML's YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _known(key: str) -> bool:
    """``section.argument`` with a known section and a plain argument name."""
    prefix = next((prefix for prefix in PREFIXES if key.startswith(prefix)), None)
    return prefix is not None and bool(key[len(prefix) :]) and "." not in key[len(prefix) :]


def _grid(section: Any) -> list[dict[str, Any]]:
    if isinstance(section, dict) and "grid" in section:
        return [item for item in section["grid"] if isinstance(item, dict)]
    return [section] if isinstance(section, dict) else []


def _model_entries(benchmark: dict[str, Any]) -> list[dict[str, Any]]:
    return _grid(benchmark.get("model"))


def _takes(class_path: Any, argument: str) -> bool:
    """Whether the model named ``class_path`` (``Cbigan``, ``Ganomaly``, a dotted path) has ``argument``."""
    from anomalib_cbigan.registry import takes_argument

    cls = _model_class(str(class_path))
    return cls is not None and takes_argument(cls, argument)


def _default(class_path: Any, argument: str) -> Any:  # noqa: ANN401
    """The default of ``argument`` in the constructor of the model named ``class_path`` (which takes it)."""
    return inspect.signature(_model_class(str(class_path))).parameters[argument].default


def _model_class(class_path: str) -> type | None:
    if "." in class_path:
        module, _, name = class_path.rpartition(".")
        return getattr(importlib.import_module(module), name, None)
    from anomalib_cbigan.registry import list_models, model_class

    if class_path.lower() in {name.lower() for name in list_models()}:
        return model_class(class_path)
    import anomalib.models

    return getattr(anomalib.models, class_path, None)
