"""Any benchmark results CSV (ours or ``anomalib benchmark``'s) as Markdown/CSV tables and PNG plots.

Rows are grouped by model *variant*: the model class plus whichever of its arguments (or trainer
arguments) change between its rows, seeds aside, so an alpha sweep gives ``Cbigan (alpha=0.1)``,
``Cbigan (alpha=1.0)``, ...; untrained jobs are ``Cbigan (untrained)``. A category run with its brightness
standardised is a category of its own (``grid (brightness 0.45)``). Seeds of one variant and category
are averaged (mean ± std).

The report opens with what a reader needs first: datasets where the brightness shortcut
(:mod:`~anomalib_cbigan.sweep.shortcut`) scores far from chance, and the table of settings chosen without test
labels: where a model has several variants, the one with the best mean validation AUROC
(``val_image_AUROC_raw``, measured on the datamodule's validation split: with ``val_split_mode: synthetic``,
held-out training images and synthetic anomalies), with each row's ``chosen_by``. Then a table per metric,
image AUROC per defect type (from the jobs' per-image scores), costs, where the sweep ran MVTec AD categories
the CBiGAN paper's Tables II and III and the FCBiGAN thesis's pixel AUPR beside ours
(:mod:`~anomalib_cbigan.sweep.paper`), plots, and the reconstruction figures the jobs saved.

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
from .paper import PAPER_TEXT, THESIS_TEXT, paper_sections, thesis_section

logger = logging.getLogger(__name__)

MODEL = "model.class_path"
CATEGORY_COLUMNS = ("data.init_args.category", "data.category")
# Arguments that name a variant when they change between one model's rows; nested class configs
# (pre-processors, evaluators) count by their last key.
VARIANT_PREFIXES = ("model.init_args.", "trainer.", "model.trainer.")
UNTRAINED = "model.untrained"
CHOSEN_BY = "model.chosen_by"
BRIGHTNESS = "data.init_args.standardize_brightness"
SELECTION_METRIC = "val_image_AUROC_raw"
SHORTCUT_MODEL = "MeanIntensity"
# The brightness shortcut's AUROC further than this from 0.5 flags a dataset (in either direction: a cue that
# ranks defects darker is as usable as one that ranks them brighter).
SHORTCUT_FLAG = 0.15
HEADLINE_METRICS = ("image_AUROC", "image_MaxBalancedAccuracy", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO")
SELECTION_NOTE = (
    "One row per dataset and model: where the sweep ran several variants of a model, the one with the best mean "
    "validation image AUROC (`val_image_AUROC_raw`, on the datamodule's validation split: with `val_split_mode: "
    "synthetic`, normal training images held out of the fit plus synthetic anomalies made from them; no test "
    "image). `chosen by`: how the entry's settings were fixed (its `chosen_by`). Test metrics of that variant, "
    "mean ± std over seeds."
)
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
    frame["category_name"] = frame[category].astype(str) if category else "all"
    frame["category"] = [_dataset_label(frame, index) for index in frame.index]
    if "seed" not in frame:
        frame["seed"] = 0
    flags = frame[UNTRAINED].astype(str).str.lower() if UNTRAINED in frame else pd.Series("", index=frame.index)
    frame["untrained"] = flags.isin(["true", "1", "1.0"])
    frame["model"] = [_variant_label(frame, index) for index in frame.index]
    return frame


def _dataset_label(frame: pd.DataFrame, index: Any) -> str:
    """The category, plus the brightness it was standardised to (a dataset of its own)."""
    name = frame.at[index, "category_name"]
    if BRIGHTNESS not in frame:
        return name
    value = frame.at[index, BRIGHTNESS]
    return name if pd.isna(value) else f"{name} (brightness {value:g})"


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
    """The image/pixel metric columns (test, then validation) that hold numbers, in file order."""
    return [
        column
        for column in frame.columns
        if column.startswith(("image_", "pixel_", "val_image_", "val_pixel_"))
        and pd.api.types.is_numeric_dtype(frame[column])
        and frame[column].notna().any()
    ]


def shortcut_flags(frame: pd.DataFrame) -> list[str]:
    """A warning line for each dataset where the brightness shortcut's raw image AUROC is far from 0.5."""
    column = "image_AUROC_raw" if "image_AUROC_raw" in frame else "image_AUROC"
    if column not in frame:
        return []
    lines = []
    shortcut = frame[frame["model_class"] == SHORTCUT_MODEL]
    for (dataset, model), values in shortcut.groupby(["category", "model"], sort=False)[column]:
        score = values.mean()
        if not np.isnan(score) and abs(score - 0.5) > SHORTCUT_FLAG:
            lines.append(
                f"- **Shortcut on {dataset}**: {model}, which learns nothing about defects, scores image AUROC "
                f"{score:.3f}. A model can read well here by brightness alone; compare the models with the "
                "brightness standardised (`LocalMVTecAD(standardize_brightness=...)`)."
            )
    return lines


def selection_table(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Per dataset and model (trained and untrained apart), the variant with the best mean validation AUROC.

    A model with one variant is listed as it is; ``chosen by`` says how its settings were fixed (the entry's
    ``chosen_by``) and, where there were several variants, that this one won on validation. The shortcut check's
    variants are checks, not candidates: each is listed.
    """
    if SELECTION_METRIC not in frame:
        return []
    rows = []
    candidates_of = np.where(frame["model_class"] == SHORTCUT_MODEL, frame["model"], frame["model_class"])
    for (dataset, _, _), group in frame.groupby(["category", candidates_of, "untrained"], sort=False):
        validation = group.groupby("model", sort=False)[SELECTION_METRIC].mean()
        candidates = len(validation)
        best = validation.idxmax() if validation.notna().any() else validation.index[0]
        chosen = group[group["model"] == best]
        notes = [str(note) for note in dict.fromkeys(chosen[CHOSEN_BY].dropna())] if CHOSEN_BY in chosen else []
        if candidates > 1:
            notes.append(f"best {SELECTION_METRIC} of {candidates} variants")
        row = {"dataset": dataset, "model": best, "seeds": str(chosen["seed"].nunique()),
               "chosen by": "; ".join(notes) or "—", SELECTION_METRIC: _cell(chosen[SELECTION_METRIC])}  # fmt: skip
        row |= {metric: _cell(chosen[metric]) if metric in chosen else "—" for metric in HEADLINE_METRICS}
        rows.append(row)
    datasets = list(dict.fromkeys(frame["category"]))
    return sorted(rows, key=lambda row: datasets.index(row["dataset"]))  # stable: models in sweep order


def defect_table(frame: pd.DataFrame, scores_dir: Path) -> list[dict[str, str]]:
    """Image AUROC (raw scores) of each defect type against the good test images, per dataset and model.

    The defect type is the folder of each test image (MVTec AD's ``test/<defect type>/``), read from the
    per-image scores the jobs saved; mean ± std over seeds.
    """
    if "job_id" not in frame or not Path(scores_dir).is_dir():
        return []
    from sklearn.metrics import roc_auc_score

    per_job: list[dict[str, Any]] = []
    for _, job in frame.iterrows():
        path = Path(scores_dir) / f"{job['job_id']}.csv"
        if not path.is_file():
            continue
        scores = pd.read_csv(path)
        scores["defect"] = [Path(str(image)).parent.name for image in scores["image_path"]]
        good = scores[scores["gt_label"] == 0]
        if good.empty:
            continue
        for defect, bad in scores[scores["gt_label"] == 1].groupby("defect"):
            both = pd.concat([good, bad])
            auroc = roc_auc_score(both["gt_label"], both["pred_score"])
            per_job.append({"dataset": job["category"], "model": job["model"], "defect": defect, "auroc": auroc})
    if not per_job:
        return []
    table = pd.DataFrame(per_job)
    defects = list(dict.fromkeys(table["defect"]))
    rows = []
    for (dataset, model), group in table.groupby(["dataset", "model"], sort=False):
        row = {"dataset": dataset, "model": model}
        row |= {defect: _cell(group.loc[group["defect"] == defect, "auroc"]) for defect in defects}
        rows.append(row)
    return rows


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
    thesis_text: Path | None = THESIS_TEXT,
) -> Path:
    """Write ``report.md``, ``summary.csv``/``.md`` and the plots for a results CSV; return the report's path.

    Args:
        results_csv: A results file of :class:`~anomalib_cbigan.sweep.Sweep` or of ``anomalib benchmark``.
        output_dir: Defaults to the CSV's folder.
        roc_category: The category whose ROC curves are drawn (needs the ``scores/`` folder that
            :class:`~anomalib_cbigan.sweep.Sweep` writes beside its CSV). Defaults to the first.
        paper_text: The CBiGAN paper's text, for its tables beside MVTec AD results (skipped, with a log
            line, where the file is missing; ``None``: never).
        thesis_text: The FCBiGAN thesis's text, for its pixel AUPR table (skipped where missing; ``None``: never).
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
    flags = shortcut_flags(frame)
    if flags:
        sections += ["## Shortcut check", "", *flags, ""]
    selected = selection_table(frame)
    if selected:
        sections += ["## Settings chosen without test labels", "", SELECTION_NOTE, "", markdown_table(selected), ""]
    for metric in metrics:
        sections += [f"## {metric}", "", markdown_table(metric_table(frame, metric)), ""]
    defects = defect_table(frame, results_csv.parent / "scores")
    if defects:
        sections += ["## image AUROC per defect type (raw scores, each defect type against the good test images)",
                     "", markdown_table(defects), ""]  # fmt: skip
    sections += ["## Cost (means over jobs)", "", markdown_table(cost_table(frame)), ""]
    if paper_text is not None and Path(paper_text).is_file():
        sections += [*paper_sections(frame, Path(paper_text).read_text()), ""]
    elif paper_text is not None:
        logger.info("No paper text at %s: the report has no paper tables", paper_text)
    if thesis_text is not None and Path(thesis_text).is_file():
        sections += [*thesis_section(frame, Path(thesis_text).read_text()), ""]
    figures = plots.draw_all(frame, metrics, output_dir / "plots", results_csv.parent / "scores", roc_category)
    sections += [f"![{figure.stem}](plots/{figure.name})" for figure in figures]
    sections += reconstruction_section(frame, results_csv.parent, output_dir, roc_category)
    if metrics:
        write_tables(summary_rows(frame, metrics), output_dir / "summary")
    report = output_dir / "report.md"
    atomic_write_text(report, "\n".join(sections) + "\n")
    logger.info("Wrote %s and %d plots", report, len(figures))
    return report
