"""The training-speed benchmark runs end to end (a smoke test: it measures, the README reports; nothing is timed here)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from types import ModuleType


def test_a_paths_rounds_give_one_row_of_medians(benchmark_script: Callable[[str], ModuleType]) -> None:
    rounds = [{"path": "p", "images/s": 10.0, "ops/batch": 1000, "loader images/s": ""},
              {"path": "p", "images/s": 14.0, "ops/batch": 1002, "loader images/s": ""},
              {"path": "p", "images/s": 11.5, "ops/batch": 1001, "loader images/s": ""}]  # fmt: skip
    assert benchmark_script("training_speed").median_row(rounds) == {
        "path": "p", "images/s": 11.5, "ops/batch": 1001, "loader images/s": "", "rounds": 3}  # fmt: skip


def test_training_speed_measures_both_paths_and_writes_its_tables(
    mvtec_root: Path, tmp_path: Path, benchmark_script: Callable[[str], ModuleType]
) -> None:
    paths = ["anomalib", "in-memory channels_last", "in-memory channels_last fused"]
    rows = benchmark_script("training_speed").main([
        "--root", str(mvtec_root), "--category", "brick", "--models", "Cbigan", "--paths", *paths,
        "--image-size", "64", "--batch-size", "4", "--batches", "6", "--workers", "0", "--profile",
        "--output", str(tmp_path / "speed"),
    ])  # fmt: skip
    before, unfused, fused = rows
    assert [row["path"] for row in rows] == paths
    for row in rows:
        assert row["timed batches"] == 6 and row["images/s"] > 0  # one D, D, D, D, D, E/G cycle
        assert row["critic s"] > 0 and row["E/G s"] > 0 and 0 <= row["data %"] <= 100
        assert row["ops/batch"] > 0 and row["protocol batches"] == 1_200_000 and row["critic steps"] == 5
        assert row["% of matmul 1024"] > 0 and row["% of conv3x3 3ch"] > 0
    # same math whatever the layout, data path and number of network calls
    assert before["GFLOP/batch"] == unfused["GFLOP/batch"] == fused["GFLOP/batch"] > 0
    assert fused["ops/batch"] < unfused["ops/batch"]  # joint network calls and fused Adam: fewer operator calls
    assert before["loader images/s"] > 0 and unfused["loader images/s"] == ""
    with (tmp_path / "speed.csv").open() as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == paths
    assert (tmp_path / "speed.md").read_text().count("\n| Cbigan |") == 3
    with (tmp_path / "speed_reference.csv").open() as handle:
        assert {row["reference"] for row in csv.DictReader(handle)} == {"matmul 1024", "conv3x3 3ch", "conv3x3 64ch"}
    with (tmp_path / "speed_profile.csv").open() as handle:
        profiled = list(csv.DictReader(handle))
    assert [row["path"] for row in profiled] == paths
    assert all(0 < float(row["in aten operators %"]) <= 100 for row in profiled)
    assert (tmp_path / "speed_operators.csv").read_text().count("aten::") >= 3 * 10
