"""The paper's tables are read from its text, and our results fill their columns."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
PAPER = Path(__file__).parents[3] / "shared" / "papers" / "cbigan-paper.txt"


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("paper_tables", BENCHMARKS / "paper_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_tables"] = module
    spec.loader.exec_module(module)
    return module


def _row(markdown: str, table: str, category: str) -> list[str]:
    section = markdown.split(f"## Table {table}:")[1].split("## Table")[0]
    line = next(line for line in section.splitlines() if line.startswith(f"| {category} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.skipif(not PAPER.exists(), reason="needs ../shared/papers beside the checkout")
def test_paper_numbers_come_from_the_paper_text(tables) -> None:
    paper = tables.paper_rows(PAPER.read_text())
    assert paper["II"]["CBiGAN (ours)"]["grid"] == 0.99
    assert paper["II"]["EGBAD [16]"]["overall mean"] == 0.61
    assert paper["III"]["GANomaly [14]"]["bottle"] == 0.89
    assert paper["III"]["CBiGAN (ours)"]["texture mean"] == 0.85


@pytest.mark.skipif(not PAPER.exists(), reason="needs ../shared/papers beside the checkout")
def test_our_results_fill_the_columns_and_missing_ones_say_so(tables, tmp_path: Path) -> None:
    results = tmp_path / "results.csv"
    rows = [{"model": "Cbigan", "category": c, "status": "done", "image_AUROC": v, "image_MaxBalancedAccuracy": v}
            for c, v in zip(tables.TEXTURES, (0.5, 0.6, 0.7, 0.8, 0.9), strict=True)]  # fmt: skip
    rows.append({"model": "Egbad", "category": "bottle", "status": "done", "image_AUROC": 0.25,
                 "image_MaxBalancedAccuracy": 0.3})  # fmt: skip
    with results.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    output = tables.main(["--results", str(results), "--paper", str(PAPER), "--output", str(tmp_path / "t.md")])
    markdown = output.read_text()
    # columns: paper GANomaly, paper EGBAD, paper CBiGAN, ours Cbigan, Egbad, Fcbigan, Ganomaly
    assert _row(markdown, "III", "carpet") == [
        "carpet",
        "0.70",
        "0.52",
        "0.55",
        "0.50",
        "not run",
        "not run",
        "not run",
    ]
    assert _row(markdown, "III", "*texture mean*")[4] == "0.70"  # all five textures run
    assert _row(markdown, "III", "*object mean*")[5] == "not run"  # one object of ten: no mean
    assert _row(markdown, "II", "bottle") == ["bottle", "0.68", "0.84", "not run", "0.30", "n/a (textures only)",
                                              "not run"]  # fmt: skip
