"""Any benchmark results CSV (ours or ``anomalib benchmark``'s) as Markdown/CSV tables and PNG plots.

Rows are grouped by model *variant*: the model class plus whichever of its arguments (or trainer
arguments) change between its rows, seeds aside, so an alpha sweep gives ``Cbigan (alpha=0.1)``,
``Cbigan (alpha=1.0)``, ...; untrained jobs are ``Cbigan (untrained)``. Seeds of one variant and category
are averaged (mean ± std). Where the sweep ran MVTec AD categories, the CBiGAN paper's Tables II and III
are set beside ours (:mod:`~anomalib_cbigan.sweep.paper`); the reconstruction figures the jobs saved are
shown for one category.

Example:
    >>> import pandas as pd
    >>> from anomalib_cbigan.sweep.report import metric_table, tidy
    >>> frame = tidy(pd.DataFrame({
    ...     "model.class_path": ["Cbigan", "Cbigan", "anomalib.models.Ganomaly"],
    ...     "data.init_args.category": ["brick", "brick", "brick"],
    ...     "seed": [0, 1, 0],
    ...     "image_AUROC": [0.8, 0.9, 0.6],
    ... }))
    >>> metric_table(frame, "image_AUROC")[0]
    {'category': 'brick', 'Cbigan': '**0.850 ± 0.071**', 'Ganomaly': '0.600'}
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalib_cbigan.atomic_files import atomic_write_text
from anomalib_cbigan.reports import markdown_table, write_tables

from . import plots
from .job import FIGURES
from .paper import PAPER_TEXT, paper_sections

logger = logging.getLogger(__name__)

MODEL = "model.class_path"
CATEGORY_COLUMNS = ("data.init_args.category", "data.category")
# Arguments that name a variant when they change between one model's rows; nested class configs
# (pre-processors, evaluators) count by their last key.
VARIANT_PREFIXES = ("model.init_args.", "trainer.", "model.trainer.")
UNTRAINED = "model.untrained"
COSTS = {
    "fit_duration": "train s",
    "test_duration": "test s",
    "inference_ms_per_image": "inference ms/image",
}


def tidy(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``model`` (variant label), ``category`` and ``seed`` columns to a results frame."""
    if MODEL not in results:
        msg = f"Not a benchmark results table: no {MODEL!r} column (columns: {list(results.columns)[:12]} ...)"
        raise ValueError(msg)
    frame = results.copy()
    frame["model_class"] = frame[MODEL].astype(str).str.rsplit(".", n=1).str[-1]
    category = next((column for column in CATEGORY_COLUMNS if column in frame), None)
    frame["category"] = frame[category].astype(str) if category else "all"
    if "seed" not in frame:
        frame["seed"] = 0
    flags = frame[UNTRAINED].astype(str).str.lower() if UNTRAINED in frame else pd.Series("", index=frame.index)
    frame["untrained"] = flags.isin(["true", "1", "1.0"])
    frame["model"] = [_variant_label(frame, index) for index in frame.index]
    return frame


def _variant_label(frame: pd.DataFrame, index: Any) -> str:
    """The class, plus the arguments that differ between its rows of the same kind (trained or untrained)."""
    cls = frame.at[index, "model_class"]
    untrained = bool(frame.at[index, "untrained"])
    peers = frame[(frame["model_class"] == cls) & (frame["untrained"] == untrained)]
    prefixes = ("model.init_args.",) if untrained else VARIANT_PREFIXES  # an untrained job has no training arguments
    parts = []
    for column in frame.columns:
        if not column.startswith(prefixes):
            continue
        if peers[column].astype(str).nunique(dropna=False) > 1:
            value = frame.at[index, column]
            if not (isinstance(value, float) and np.isnan(value)):
                parts.append(f"{column.rsplit('.', 1)[-1]}={value}")
    if untrained:
        parts.append("untrained")
    return f"{cls} ({', '.join(parts)})" if parts else cls


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The image/pixel metric columns that hold numbers, in file order."""
    return [
        column
        for column in frame.columns
        if column.startswith(("image_", "pixel_")) and pd.api.types.is_numeric_dtype(frame[column])
    ]


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def metric_table(frame: pd.DataFrame, metric: str) -> list[dict[str, str]]:
    """Category × model rows (mean ± std over seeds), a ``mean`` row, the best of each row in bold.

    The mean row averages each model's per-category means; a model missing some categories is marked
    ``(k/n)`` with the number of categories it has.
    """
    models = list(dict.fromkeys(frame["model"]))
    categories = list(dict.fromkeys(frame["category"]))
    groups = frame.groupby(["category", "model"], sort=False)[metric]
    means = groups.mean().unstack("model").reindex(index=categories, columns=models)
    rows = []
    for category in categories:
        cells = {
            model: _cell(groups.get_group((category, model))) if (category, model) in groups.groups else "—"
            for model in models
        }
        rows.append({"category": category, **_bold_best(cells, means.loc[category])})
    if len(categories) > 1:
        overall = means.mean(axis=0, skipna=True)
        counts = means.notna().sum(axis=0)
        cells = {
            model: ("—" if np.isnan(overall[model]) else f"{overall[model]:.3f}")
            + ("" if counts[model] in (0, len(categories)) else f" ({counts[model]}/{len(categories)})")
            for model in models
        }
        rows.append({"category": "mean", **_bold_best(cells, overall)})
    return rows


def _bold_best(cells: dict[str, str], means: pd.Series) -> dict[str, str]:
    if means.notna().any():
        best = means.max()
        for model, mean in means.items():
            if not np.isnan(mean) and np.isclose(mean, best):
                cells[model] = f"**{cells[model]}**"
    return cells


def cost_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model variant: jobs, seeds, and the mean training, test and per-image inference times."""
    rows = []
    for model, group in frame.groupby("model", sort=False):
        row: dict[str, Any] = {"model": model, "jobs": len(group), "seeds": group["seed"].nunique()}
        for column, title in COSTS.items():
            row[title] = f"{group[column].mean():.1f}" if column in group else "—"
        rows.append(row)
    return rows


def summary_rows(frame: pd.DataFrame, metrics: list[str]) -> list[dict[str, Any]]:
    """Long format for ``summary.csv``: one row per (metric, category, model) with mean, std and seeds."""
    rows = []
    for metric in metrics:
        for (category, model), values in frame.groupby(["category", "model"], sort=False)[metric]:
            values = values.dropna()
            if values.empty:
                continue
            std = values.std(ddof=1) if len(values) > 1 else float("nan")
            rows.append(
                {
                    "metric": metric,
                    "category": category,
                    "model": model,
                    "mean": values.mean(),
                    "std": std,
                    "seeds": len(values),
                }
            )
    return rows


def reconstruction_section(
    frame: pd.DataFrame, results_dir: Path, output_dir: Path, category: str | None = None
) -> list[str]:
    """Markdown lines showing each model's saved figure (its first seed) for one category (default: the first)."""
    if "job_id" not in frame:
        return []
    category = category or frame["category"].iloc[0]
    lines = []
    for model, jobs in frame[frame["category"] == category].groupby("model", sort=False):
        job = jobs.sort_values("seed").iloc[0]
        figure = results_dir / FIGURES / f"{job['job_id']}.png"
        if figure.is_file():
            relative = Path(os.path.relpath(figure, output_dir)).as_posix()
            lines += [f"**{model}**, {category}, seed {job['seed']}: input, reconstruction, maps, ground truth", "",
                      f"![{model}]({relative})", ""]  # fmt: skip
    return ["", f"## Reconstructions and anomaly maps ({category})", "", *lines] if lines else []


def write_report(
    results_csv: Path | str,
    output_dir: Path | str | None = None,
    *,
    roc_category: str | None = None,
    paper_text: Path | None = PAPER_TEXT,
) -> Path:
    """Write ``report.md``, ``summary.csv``/``.md`` and the plots for a results CSV; return the report's path.

    Args:
        results_csv: A results file of :class:`~anomalib_cbigan.sweep.Sweep` or of ``anomalib benchmark``.
        output_dir: Defaults to the CSV's folder.
        roc_category: The category whose ROC curves are drawn (needs the ``scores/`` folder that
            :class:`~anomalib_cbigan.sweep.Sweep` writes beside its CSV). Defaults to the first.
        paper_text: The CBiGAN paper's text, for its tables beside MVTec AD results (skipped, with a log
            line, where the file is missing; ``None``: never).
    """
    results_csv = Path(results_csv)
    if not results_csv.is_file():
        msg = f"No results file at {results_csv}: run a sweep first (python benchmarks/run_sweep.py --config ...)"
        raise FileNotFoundError(msg)
    results = pd.read_csv(results_csv)
    if results.empty:
        msg = f"{results_csv} has no rows: no job of the sweep has finished yet."
        raise ValueError(msg)
    frame = tidy(results)
    output_dir = Path(output_dir) if output_dir is not None else results_csv.parent
    metrics = metric_columns(frame)
    sections = [f"# Benchmark report: {results_csv}", ""]
    sections += [f"{len(frame)} jobs, models: {', '.join(dict.fromkeys(frame['model']))}.", ""]
    for metric in metrics:
        sections += [f"## {metric}", "", markdown_table(metric_table(frame, metric)), ""]
    sections += ["## Cost (means over jobs)", "", markdown_table(cost_table(frame)), ""]
    if paper_text is not None and Path(paper_text).is_file():
        sections += [*paper_sections(frame, Path(paper_text).read_text()), ""]
    elif paper_text is not None:
        logger.info("No paper text at %s: the report has no paper tables", paper_text)
    figures = plots.draw_all(frame, metrics, output_dir / "plots", results_csv.parent / "scores", roc_category)
    sections += [f"![{figure.stem}](plots/{figure.name})" for figure in figures]
    sections += reconstruction_section(frame, results_csv.parent, output_dir, roc_category)
    if metrics:
        write_tables(summary_rows(frame, metrics), output_dir / "summary")
    report = output_dir / "report.md"
    atomic_write_text(report, "\n".join(sections) + "\n")
    logger.info("Wrote %s and %d plots", report, len(figures))
    return report
