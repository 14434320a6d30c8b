"""Integration tests run in their own temporary folder."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(autouse=True)
def _work_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep files that tools write to the working directory (anomalib's ./openvino_cache) out of the checkout."""
    monkeypatch.chdir(tmp_path)


def venv_importing_from(venv: Path, packages: Path) -> Path:
    """A new virtual environment, without a pip of its own, whose interpreter imports from ``packages`` (a folder
    of links to installed distributions) and from nothing of this environment; its ``python``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "linked_packages.pth").write_text(f"{packages}\n")
    return python


@pytest.fixture
def make_venv() -> Callable[[Path, Path], Path]:
    """:func:`venv_importing_from`, for the tests that install or run something away from this environment."""
    return venv_importing_from


def load_benchmark_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (the scripts are not a package)."""
    path = Path(__file__).parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def benchmark_script() -> Callable[[str], ModuleType]:
    """:func:`load_benchmark_script`, for the tests of the benchmark scripts."""
    return load_benchmark_script
