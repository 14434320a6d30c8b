"""benchmarks/protocol_cost.py: a sweep's projected GPU-hours from the speed table's projected batch times."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import yaml

GPU_HOURS = "protocol, one GPU, projected (h)"


def test_batch_bound_jobs_cost_their_batches_epoch_bound_ones_their_protocol_and_unknown_models_nothing(
    tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    speed = pd.DataFrame([
        {"model": "Cbigan", "path": "in-memory channels_last fused", "protocol batches": 3_600_000, GPU_HOURS: 1.0},
        {"model": "Cbigan", "path": "in-memory channels_last bf16", "protocol batches": 3_600_000, GPU_HOURS: 0.5},
        {"model": "Cbigan", "path": "anomalib", "protocol batches": 3_600_000, GPU_HOURS: 0.1},
        {"model": "Skipganomaly", "path": "in-memory channels_last", "protocol batches": 105, GPU_HOURS: 0.05},
    ])  # fmt: skip
    speed.to_csv(tmp_path / "speed.csv", index=False)
    models = [{"class_path": "Cbigan", "trainer": {"max_steps": 360_000}},  # 1 ms a batch: 0.1 h
              {"class_path": "Skipganomaly", "trainer": {"max_epochs": 15}},  # its protocol's 0.05 h
              {"class_path": "Ganomaly"}]  # fmt: skip
    sweep = {"benchmark": {"seed": {"grid": [0, 1]}, "model": {"grid": models},
                           "data": {"class_path": "LocalMVTecAD",
                                    "init_args": {"root": "${MVTEC_ROOT}", "category": {"grid": ["a", "b"]}}}}}  # fmt: skip
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))

    table = benchmark_script("protocol_cost").main(["--sweeps", str(tmp_path / "sweep.yaml"), "--speed",
                                                    str(tmp_path / "speed.csv"), "--output", str(tmp_path / "cost")])

    per_category = table[table["sweep"] == "sweep.yaml"].set_index("category")
    assert list(per_category["jobs"]) == [6, 6]
    assert list(per_category["models not projected"]) == ["Ganomaly", "Ganomaly"]
    # two seeds of (0.1 + 0.05) h; the bf16 and anomalib-loader rows are not the sweeps' path
    assert per_category["GPU hours, projected"].tolist() == pytest.approx([0.3, 0.3])
    assert table.iloc[-1]["GPU hours, projected"] == pytest.approx(0.6)
    assert "A projection, not a measurement" in (tmp_path / "cost.md").read_text()
