"""The installable library and its boundary: it never imports the benchmark harness, knows no checkout path, and
registers its models whichever of its modules a program imports first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "anomalib_cbigan"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_library_never_imports_the_harness() -> None:
    offenders = [str(path) for path in SRC.rglob("*.py") if any(
        name.split(".")[0] == "anomalib_cbigan_bench" for name in _imported_modules(path))]  # fmt: skip
    assert not offenders


def test_nothing_in_the_library_knows_where_the_checkout_or_the_shared_data_is() -> None:
    offenders = [str(path) for path in SRC.rglob("*") if path.is_file() and path.suffix in (".py", ".md", ".pth")
                 and ("../shared" in path.read_text() or "parents[" in path.read_text())]  # fmt: skip
    assert not offenders


# Each imports anomalib at import time; imported first, it must not catch the start-up hook's registration of the
# models half-way (a circular import that left `--model Cbigan` unresolved, with a warning).
@pytest.mark.parametrize(
    "module",
    ["anomalib_cbigan.metrics", "anomalib_cbigan.data", "anomalib_cbigan.deploy"],
)
def test_any_module_imported_first_leaves_the_models_registered(module: str) -> None:
    code = f"import {module}, anomalib.models as m; assert hasattr(m, 'Cbigan') and hasattr(m, 'Sagan'), 'unregistered'"
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code], capture_output=True,
                            text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
