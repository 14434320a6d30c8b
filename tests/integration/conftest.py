"""Integration tests run in their own temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _work_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep files that tools write to the working directory (anomalib's ./openvino_cache) out of the checkout."""
    monkeypatch.chdir(tmp_path)
