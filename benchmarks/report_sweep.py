"""Turn any benchmark results CSV into Markdown/CSV tables and PNG plots.

Takes the ``results.csv`` of ``benchmarks/run_sweep.py`` or of ``anomalib benchmark``
(``runs/benchmark/<time>/results.csv``). Tables: category × model for every metric (mean ± std over
seeds, a mean row, the best in bold) and a cost table (train, test and per-image inference time).
Plots: a bar chart per metric, the alpha curve when alpha was swept, ROC curves for one category
(when the per-image scores of ``run_sweep.py`` are beside the CSV).

With ``--refresh DOC ...`` it instead rebuilds, in place, every generated table of those Markdown documents from
the source it names (:mod:`anomalib_cbigan_bench.generated_docs`): a sweep's settings chosen without test labels,
their test metrics and the published figures beside them; a benchmark script's table; the model registry.

Usage:
    python benchmarks/report_sweep.py results/sweeps/embedded_textures/results.csv [--output DIR] [--roc-category grass]
    python benchmarks/report_sweep.py --refresh README.md docs/*.md src/anomalib_cbigan/models/*/README.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anomalib_cbigan.atomic_files import atomic_write_text
from anomalib_cbigan_bench.generated_docs import refresh_generated_tables
from anomalib_cbigan_bench.report import write_report


def main(argv: list[str] | None = None) -> int:
    """Write the report; print its path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, nargs="?", help="a results CSV")
    parser.add_argument("--refresh", type=Path, nargs="+", metavar="DOC", help="rebuild the generated tables of Markdown files")
    parser.add_argument("--output", type=Path, help="folder for report.md, summary.* and plots/ (default: the CSV's)")
    parser.add_argument("--roc-category", help="the category whose ROC curves are drawn (default: the first)")
    args = parser.parse_args(argv)
    if args.refresh is not None:
        for document in args.refresh:
            try:
                atomic_write_text(document, refresh_generated_tables(document))
            except (FileNotFoundError, ValueError) as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            print(f"refreshed the generated tables of {document}")
        return 0
    if args.results is None:
        parser.error("give a results CSV (or --refresh DOC)")
    try:
        report = write_report(args.results, args.output, roc_category=args.roc_category)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
