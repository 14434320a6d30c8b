"""What a set of sweeps would cost on GPUs: GPU-hours per category and in all, **a projection, not a measurement**.

Each sweep's jobs are its grid points (the harness's grid, as ``run_sweep.py`` expands it; nothing is built or
trained). A job's GPU time comes from ``training_speed.py``'s projection of one GPU batch (its CSVs, ``--speed``: the
larger of a batch's FLOPs at a sustained rate and its operator calls at a launch time each), taking for each model
the fastest float32 in-memory row (the sweeps train from memory; fused steps are the models' default):

* a job bounded by batches (``max_steps``: CBiGAN's and EGBAD's 1.2 million) costs that many projected batches;
* a job bounded by epochs takes the row's own protocol figure (measured on the bottle's training images; these
  jobs are short beside the batch-bound ones, so the categories' sizes are not modelled);
* models ``training_speed.py`` does not time (anomalib's GANomaly and DRAEM) are counted as jobs, not as hours.

Run:
    python benchmarks/protocol_cost.py --sweeps benchmarks/sweeps/mvtec_*_gpu.yaml \\
        --speed benchmarks/results/training_speed_fused.csv benchmarks/results/training_speed.csv \\
        --output benchmarks/results/protocol_cost

Writes ``<output>.csv`` (one row per sweep and category) and ``<output>.md``.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from anomalib_cbigan_bench.data_roots import expand_all
from anomalib_cbigan_bench.generator import grid_points

from anomalib_cbigan.reports import markdown_table

GPU_HOURS = "protocol, one GPU, projected (h)"


def gpu_seconds_per_batch(speed_files: list[Path]) -> dict[str, tuple[float, float]]:
    """Per model: (projected GPU seconds a batch, projected GPU hours of its recipe's protocol), from the fastest
    float32 in-memory row of the speed CSVs."""
    rows = pd.concat([pd.read_csv(path) for path in speed_files], ignore_index=True)
    rows = rows[rows["path"].str.startswith("in-memory") & ~rows["path"].str.contains("bf16")]
    best = rows.sort_values(GPU_HOURS).groupby("model").first()
    return {model: (3600 * row[GPU_HOURS] / row["protocol batches"], float(row[GPU_HOURS]))
            for model, row in best.iterrows()}  # fmt: skip


def job_hours(point: dict[str, Any], speed: dict[str, tuple[float, float]]) -> float:
    """One grid point's projected GPU hours (NaN for a model without a speed row)."""
    model = str(point["model"]["class_path"]).rsplit(".", 1)[-1]
    if model not in speed:
        return math.nan
    trainer = {**point.get("trainer", {}), **point["model"].get("trainer", {})}
    seconds_per_batch, protocol_hours = speed[model]
    steps = trainer.get("max_steps", -1)
    return seconds_per_batch * steps / 3600 if steps and steps > 0 else protocol_hours


def sweep_costs(config: Path, speed: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """One row per category of the sweep: its jobs, those without a projection, and the projected GPU hours."""
    benchmark = expand_all(yaml.safe_load(config.read_text()))["benchmark"]
    by_category: dict[str, dict[str, Any]] = defaultdict(lambda: {"jobs": 0, "not projected": set(), "hours": 0.0})
    for point in grid_points(benchmark):
        category = by_category[str(point["data"]["init_args"]["category"])]
        hours = job_hours(point, speed)
        category["jobs"] += 1
        if math.isnan(hours):
            category["not projected"].add(str(point["model"]["class_path"]).rsplit(".", 1)[-1])
        else:
            category["hours"] += hours
    return [{"sweep": config.name, "category": name, "jobs": cost["jobs"],
             "models not projected": ", ".join(sorted(cost["not projected"])),
             "GPU hours, projected": round(cost["hours"], 1)} for name, cost in by_category.items()]  # fmt: skip


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Project the sweeps' GPU hours; write the CSV and the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=Path, nargs="+", required=True, help="sweep YAMLs")
    parser.add_argument("--speed", type=Path, nargs="+", required=True, help="training_speed.py CSVs")
    parser.add_argument("--output", type=Path, required=True, help="path without suffix: writes .csv and .md")
    args = parser.parse_args(argv)
    speed = gpu_seconds_per_batch(args.speed)
    rows = [row for config in args.sweeps for row in sweep_costs(config, speed)]
    total = {"sweep": "all", "category": f"{len({row['category'] for row in rows})} categories",
             "jobs": sum(row["jobs"] for row in rows), "models not projected": "",
             "GPU hours, projected": round(sum(row["GPU hours, projected"] for row in rows), 1)}  # fmt: skip
    table = pd.DataFrame([*rows, total])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output.with_suffix(".csv"), index=False)
    sources = ", ".join(path.name for path in args.speed)
    args.output.with_suffix(".md").write_text(
        f"# Projected GPU hours of {', '.join(path.name for path in args.sweeps)}\n\n"
        f"A projection, not a measurement (`benchmarks/protocol_cost.py`; GPU batch times projected in {sources}).\n\n"
        f"{markdown_table(table.to_dict('records'))}\n"
    )
    print(markdown_table(table.to_dict("records")))
    return table


if __name__ == "__main__":
    main()
