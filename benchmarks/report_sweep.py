"""Turn any benchmark results CSV into Markdown/CSV tables and PNG plots.

Takes the ``results.csv`` of ``benchmarks/run_sweep.py`` or of ``anomalib benchmark``
(``runs/benchmark/<time>/results.csv``). Tables: category × model for every metric (mean ± std over
seeds, a mean row, the best in bold) and a cost table (train, test and per-image inference time).
Plots: a bar chart per metric, the alpha curve when alpha was swept, ROC curves for one category
(when the per-image scores of ``run_sweep.py`` are beside the CSV).

Usage:
    python benchmarks/report_sweep.py results/sweeps/embedded_textures/results.csv [--output DIR] [--roc-category grass]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anomalib_cbigan.sweep.report import write_report


def main(argv: list[str] | None = None) -> int:
    """Write the report; print its path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="a results CSV")
    parser.add_argument("--output", type=Path, help="folder for report.md, summary.* and plots/ (default: the CSV's)")
    parser.add_argument("--roc-category", help="the category whose ROC curves are drawn (default: the first)")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.results, args.output, roc_category=args.roc_category)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
