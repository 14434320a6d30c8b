"""The paper's Tables II and III in a sweep's report: parsed from the paper's text, shipped as package data, our
results beside them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from anomalib_cbigan_bench.paper import (
    PAPER_FILE,
    THESIS_FILE,
    TEXTURES,
    paper_sections,
    published_from_texts,
    published_tables,
)
from anomalib_cbigan_bench.report import tidy, write_report


def _row(lines: list[str], table: str, category: str) -> list[str]:
    text = "\n".join(lines)
    section = text.split(f"### Table {table}:")[1].split("### Table")[0]
    line = next(line for line in section.splitlines() if line.startswith(f"| {category} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def sweep_rows() -> pd.DataFrame:
    """CBiGAN on the five textures (two seeds of carpet), EGBAD on bottle, untrained CBiGAN on bottle."""
    rows = [{"model.class_path": "Cbigan", "data.init_args.category": category, "seed": 0, "image_AUROC": value,
             "image_MaxBalancedAccuracy": value} for category, value in zip(TEXTURES, (0.5, 0.6, 0.7, 0.8, 0.9))]  # fmt: skip
    rows.append({**rows[0], "seed": 1, "image_AUROC": 0.7, "image_MaxBalancedAccuracy": 0.7})
    rows.append({"model.class_path": "Egbad", "data.init_args.category": "bottle", "seed": 0, "image_AUROC": 0.25,
                 "image_MaxBalancedAccuracy": 0.3})  # fmt: skip
    rows.append({"model.class_path": "Cbigan", "model.untrained": True, "data.init_args.category": "bottle",
                 "seed": 0, "image_AUROC": 0.5, "image_MaxBalancedAccuracy": 0.55})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_shipped_tables_are_what_the_texts_give(papers_dir: Path) -> None:
    texts = ((papers_dir / name).read_text() for name in (PAPER_FILE, THESIS_FILE))
    assert published_from_texts(*texts) == published_tables(), (
        "anomalib_cbigan_bench/published.json differs from the method texts: run "
        "`python benchmarks/extract_published_tables.py`"
    )


def test_paper_numbers_come_from_the_paper_text() -> None:
    paper = published_tables()["cbigan_paper"]
    assert paper["II"]["CBiGAN (ours)"]["grid"] == 0.99
    assert paper["II"]["EGBAD [16]"]["overall mean"] == 0.61
    assert paper["III"]["GANomaly [14]"]["bottle"] == 0.89
    assert paper["III"]["CBiGAN (ours)"]["texture mean"] == 0.85


def test_our_results_fill_the_columns_and_missing_ones_say_so() -> None:
    lines = paper_sections(tidy(sweep_rows()), published_tables()["cbigan_paper"])
    # columns: paper GANomaly, paper EGBAD, paper CBiGAN, ours: Cbigan, Egbad, Cbigan (untrained)
    assert _row(lines, "III", "carpet") == ["carpet", "0.70", "0.52", "0.55", "0.600 ± 0.141", "—", "—"]
    assert _row(lines, "III", "*texture mean*")[4] == "0.720"  # all five textures run (carpet: mean of its seeds)
    assert not any("object mean" in line for line in lines)  # one object of ten: no mean row
    assert _row(lines, "II", "bottle") == ["bottle", "0.68", "0.84", "—", "0.300", "0.550"]
    assert "grid" in "\n".join(lines) and "cable" not in "\n".join(lines)  # only the categories the sweep ran


def test_the_report_of_an_mvtec_sweep_carries_the_paper_tables(tmp_path) -> None:
    results = tmp_path / "results.csv"
    sweep_rows().to_csv(results, index=False)
    text = write_report(results).read_text()
    assert "## Beside the paper" in text and "Cbigan (untrained)" in text
    results.write_text(results.read_text().replace("bottle", "brick"))  # no MVTec AD object left: still textures
    assert "### Table II" in write_report(results).read_text()
    assert "## Beside the paper" not in write_report(results, with_published=False).read_text()
