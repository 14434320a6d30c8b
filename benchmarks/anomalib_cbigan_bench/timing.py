"""Wall-clock timing and the results tables shared by the speed benchmarks."""

from __future__ import annotations

import platform
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


def processor() -> str:
    """The CPU's model name and whether it has AVX-512 and AMX: what a wall-clock figure was bought on.

    Sessions land on different processors, and a sweep that trains for a fixed time buys a different number of
    updates on each, so every timed row names its processor.

    Example:
        >>> processor()  # doctest: +SKIP
        'Intel(R) Xeon(R) Processor (AVX-512, no AMX)'
    """
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:  # not Linux: the platform's name alone
        return name
    isa = "AVX-512" if "avx512f" in flags else "no AVX-512"
    return f"{name} ({isa}, {'AMX' if 'amx_tile' in flags else 'no AMX'})"


def write_speed_tables(rows: list[dict[str, Any]], output: Path) -> None:
    """``output.{md,csv}``, every row stamped with the processor, torch threads and version the figures were taken
    with."""
    cpu = processor()
    for row in rows:
        row["processor"] = cpu
        row["threads"] = torch.get_num_threads()
        row["torch"] = torch.__version__
    write_tables(rows, output)
    print(f"\nwrote {output.with_suffix('.md')} and {output.with_suffix('.csv')}")
