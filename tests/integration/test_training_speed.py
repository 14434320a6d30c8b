"""The training-speed benchmark runs end to end (a smoke test: it measures, the README reports; nothing is timed here)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def test_training_speed_measures_both_paths_and_writes_its_tables(mvtec_root: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports timing.py from beside it
    try:
        spec = importlib.util.spec_from_file_location("training_speed", BENCHMARKS / "training_speed.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows = module.main([
            "--root", str(mvtec_root), "--category", "brick", "--models", "Cbigan",
            "--paths", "anomalib", "in-memory channels_last", "--image-size", "64", "--batch-size", "4",
            "--batches", "6", "--workers", "0", "--output", str(tmp_path / "speed"),
        ])  # fmt: skip
    finally:
        sys.path.remove(str(BENCHMARKS))
    before, after = rows
    assert [before["path"], after["path"]] == ["anomalib", "in-memory channels_last"]
    for row in rows:
        assert row["timed batches"] == 6 and row["images/s"] > 0  # one D, D, D, D, D, E/G cycle
        assert row["critic s"] > 0 and row["E/G s"] > 0 and 0 <= row["data %"] <= 100
        assert row["ops/batch"] > 0 and row["protocol batches"] == 1_200_000
    assert before["GFLOP/batch"] == after["GFLOP/batch"] > 0  # same math whatever the layout and data path
    assert before["loader images/s"] > 0 and after["loader images/s"] == ""
    with (tmp_path / "speed.csv").open() as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == ["anomalib", "in-memory channels_last"]
    assert (tmp_path / "speed.md").read_text().count("\n| Cbigan |") == 2
