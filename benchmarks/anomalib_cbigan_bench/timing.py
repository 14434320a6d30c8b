"""Wall-clock timing and the results tables shared by the speed benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from anomalib_cbigan.reports import write_tables


def median_seconds(function: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median wall time of ``function`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_speed_tables(rows: list[dict[str, Any]], output: Path) -> None:
    """``output.{md,csv}``, every row stamped with the torch threads and version the figures were taken with."""
    for row in rows:
        row["threads"] = torch.get_num_threads()
        row["torch"] = torch.__version__
    write_tables(rows, output)
    print(f"\nwrote {output.with_suffix('.md')} and {output.with_suffix('.csv')}")
